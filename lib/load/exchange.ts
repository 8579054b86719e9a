/**
 * One HTTP request and its response, as an undici dispatch handler that writes straight into the
 * ledger: no promise, no stream, no body buffering unless the step reads the body. It separates
 * "recorded" (the ledger row is final; the iteration moves on) from "settled" (undici is done with the
 * connection), because a request that times out is recorded at its deadline but the connection is
 * only free once undici has torn it down.
 */
import type { Dispatcher } from 'undici';
import { classifyError, classifyStatus, ErrorClass, errorCode, type ErrorClassId } from './error-class.ts';
import { Outcome, type Ledger, type OutcomeId } from './ledger.ts';
import type { PoolJob } from './connection-pool.ts';
import type { CompiledStep, IterationContext, StepResponse } from './scenario.ts';

const MAX_BODY_BYTES = 1 << 20;

/** What an exchange needs from the engine that runs it. */
export interface ExchangeOwner {
  readonly ledger: Ledger;
  /** Lower-case names of the response headers that name the backend and the app version, or null. */
  readonly backendHeader: string | null;
  readonly versionHeader: string | null;
  /** Milliseconds since the run's origin. */
  now(): number;
  /** The connection is free again. */
  release(connection: number): void;
  /** Local port of the connection's current socket (0 when unknown). */
  localPort(connection: number): number;
  /** The request is being written on the connection's current socket: note new or reused, and its age. */
  connectionUsed(row: number, connection: number): void;
  /** The request ended without being written on a connection it was given (it failed while one was opened for it). */
  connectionUnwritten(row: number, connection: number): void;
  /** The ledger row is final. */
  recorded(ex: Exchange, outcome: OutcomeId): void;
}

/** Thrown into undici to abort a request whose deadline passed. */
export class RequestTimeoutError extends Error {
  code = 'VERDICT_REQUEST_TIMEOUT';
}

/** Thrown into undici when the run aborts in-flight requests. */
export class RunAbortedError extends Error {
  code = 'VERDICT_RUN_ABORTED';
}

export class Exchange implements PoolJob, Dispatcher.DispatchHandler {
  readonly owner: ExchangeOwner;
  readonly row: number;
  readonly step: CompiledStep;
  readonly ctx: IterationContext;
  readonly opts: Dispatcher.DispatchOptions;
  /** Issue time (ms since origin): the request timeout counts from here. */
  readonly issuedAt: number;
  /** Opaque slot for the engine (the iteration this request belongs to). */
  readonly iteration: unknown;
  recorded = false;
  settled = false;
  connection = -1;
  status = 0;
  #controller: Dispatcher.DispatchController | null = null;
  #dispatching = false;
  #written = false;
  #servedBy = 0;
  #appVersion = 0;
  #headers: Record<string, string | string[] | undefined> | null = null;
  #chunks: Buffer[] | null = null;
  #bodyBytes = 0;

  constructor(
    owner: ExchangeOwner,
    row: number,
    step: CompiledStep,
    ctx: IterationContext,
    issuedAt: number,
    iteration: unknown,
  ) {
    this.owner = owner;
    this.row = row;
    this.step = step;
    this.ctx = ctx;
    this.opts = step.options(ctx);
    this.issuedAt = issuedAt;
    this.iteration = iteration;
    const kind = step.kindOf(this.opts);
    const by = step.step.createdBy;
    if (kind !== 0 || by) owner.ledger.describe(row, kind, by ? owner.ledger.creatorId(by(ctx)) : 0);
  }

  // ---- PoolJob ----

  begin(index: number, client: Dispatcher): void {
    this.connection = index;
    this.owner.ledger.markStarted(this.row, this.owner.now(), index);
    this.#dispatching = true;
    try {
      client.dispatch(this.opts, this);
    } finally {
      this.#dispatching = false;
    }
  }

  // ---- undici handler ----

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.recorded) {
      controller.abort(new RequestTimeoutError('request deadline passed before it was written'));
      return;
    }
    this.#controller = controller;
    // undici calls this on the socket it is about to write to, just before the write.
    this.#written = true;
    this.owner.connectionUsed(this.row, this.connection);
  }

  onResponseStart(
    _c: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.status = statusCode;
    const { ledger, backendHeader, versionHeader } = this.owner;
    const sb = backendHeader === null ? undefined : headers[backendHeader];
    if (sb !== undefined) this.#servedBy = ledger.servedBy.id(typeof sb === 'string' ? sb : sb[0]);
    const ver = versionHeader === null ? undefined : headers[versionHeader];
    if (ver !== undefined) this.#appVersion = ledger.appVersions.id(typeof ver === 'string' ? ver : ver[0]);
    if (this.step.needsBody) {
      this.#headers = headers;
      this.#chunks = [];
    }
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#chunks !== null && this.#bodyBytes < MAX_BODY_BYTES) {
      this.#chunks.push(chunk);
      this.#bodyBytes += chunk.length;
    }
  }

  onResponseEnd(): void {
    this.#settle();
    if (this.recorded) return;
    const status = this.status;
    let outcome: OutcomeId = Outcome.succeeded;
    let err: ErrorClassId = ErrorClass.none;
    if (!this.step.expects(status)) {
      outcome = Outcome.failed;
      err = classifyStatus(status);
    } else if (this.step.needsBody) {
      const res = this.#response();
      try {
        const check = this.step.step.check;
        if (check && !check(res, this.ctx)) {
          outcome = Outcome.failed;
          err = ErrorClass.check_failed;
        } else {
          this.step.step.capture?.(res, this.ctx);
        }
      } catch {
        outcome = Outcome.failed;
        err = ErrorClass.check_failed;
      }
    }
    this.#record(outcome, err, 0);
  }

  onResponseError(_c: Dispatcher.DispatchController | null, error: Error): void {
    // undici may call this from inside its own loop over the client's queue (a failed connect), where
    // dispatching the next request to the same client breaks its invariants: free the client after.
    queueMicrotask(() => this.#settle());
    if (this.recorded) return;
    if (this.#dispatching) {
      // Refused synchronously (e.g. an invalid header from the scenario): record it on the next turn,
      // so a VU that keeps making the same mistake cannot recurse through dispatch.
      setImmediate(() => {
        if (!this.recorded) this.#fail(error);
      });
      return;
    }
    this.#fail(error);
  }

  #fail(error: Error): void {
    this.#record(Outcome.failed, classifyError(error), this.owner.ledger.errorCodes.id(errorCode(error)));
  }

  // ---- engine-side endings ----

  /** The deadline passed: record a timeout now, and abort the request if it is on a connection. */
  timeout(): void {
    if (this.recorded) return;
    this.#record(Outcome.failed, ErrorClass.timeout, this.owner.ledger.errorCodes.id('VERDICT_REQUEST_TIMEOUT'));
    this.#controller?.abort(new RequestTimeoutError('request timed out'));
  }

  /** The run is aborting: record this request as aborted and stop it. */
  abort(): void {
    if (this.recorded) return;
    this.#record(Outcome.failed, ErrorClass.aborted, this.owner.ledger.errorCodes.id('VERDICT_RUN_ABORTED'));
    this.#controller?.abort(new RunAbortedError('run aborted'));
  }

  #record(outcome: OutcomeId, err: ErrorClassId, errCodeId: number): void {
    this.recorded = true;
    if (!this.#written && this.connection >= 0) this.owner.connectionUnwritten(this.row, this.connection);
    this.owner.ledger.finish(
      this.row,
      this.owner.now(),
      outcome,
      this.status,
      err,
      errCodeId,
      this.#servedBy,
      this.#appVersion,
      this.owner.localPort(this.connection),
    );
    this.owner.recorded(this, outcome);
  }

  #settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.#controller = null;
    if (this.connection >= 0) this.owner.release(this.connection);
  }

  #response(): StepResponse {
    const chunks = this.#chunks ?? [];
    let text: string | undefined;
    const readText = () => (text ??= Buffer.concat(chunks).toString('utf8'));
    return {
      status: this.status,
      headers: this.#headers ?? {},
      text: readText,
      json: <T>() => JSON.parse(readText()) as T,
    };
  }
}
