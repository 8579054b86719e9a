/**
 * The per-request ledger: one row per scheduled request, stored column-wise in typed arrays so a
 * million requests cost ~50 MB, not a million objects. Rows are appended in scheduling order and
 * filled in as the request progresses. Times are milliseconds (fractional) since the run's origin;
 * `origin.epochMs` turns them into wall-clock time for joins with a cluster timeline.
 */
import { errorClassName, errorClassNames, type ErrorClassId, type ErrorClassName } from './error-class.ts';

/** What became of a request. Invariant at the end of a run: scheduled = succeeded + failed + dropped. */
export const Outcome = { pending: 0, succeeded: 1, failed: 2, dropped: 3 } as const;
export type OutcomeId = (typeof Outcome)[keyof typeof Outcome];
export type OutcomeName = keyof typeof Outcome;
const outcomeNames: OutcomeName[] = ['pending', 'succeeded', 'failed', 'dropped'];

const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;
const MASK = CHUNK - 1;

/** Bytes one row occupies across all columns (see {@link LedgerChunk}). */
export const LEDGER_BYTES_PER_ROW = 8 * 4 + 2 + 1 + 1 + 2 + 2 + 2 + 2 + 4 + 2 + 2 + 2 + 2 + 1 + 4;

/** Whether a request went out on a connection opened for it or on one kept alive from earlier requests. */
export const ConnectionUse = { unknown: 0, new: 1, reused: 2 } as const;
export type ConnectionUseId = (typeof ConnectionUse)[keyof typeof ConnectionUse];
export type ConnectionUseName = 'new' | 'reused';

/** One block of CHUNK rows; every column is a typed array of the same length. */
class LedgerChunk {
  /** When the request was due (arrival schedule, or when the virtual user was ready). */
  readonly scheduledAt = new Float64Array(CHUNK);
  /** When the engine acted on it (scheduledAt + the engine's own scheduling delay). */
  readonly issuedAt = new Float64Array(CHUNK);
  /** When it was handed to a connection (issuedAt + wait for a free connection). NaN if never. */
  readonly startedAt = new Float64Array(CHUNK);
  /** When the response ended or the request failed. NaN while pending and for dropped rows. */
  readonly endedAt = new Float64Array(CHUNK);
  /** HTTP status, 0 when there was no response. */
  readonly status = new Uint16Array(CHUNK);
  readonly outcome = new Uint8Array(CHUNK);
  readonly errorClass = new Uint8Array(CHUNK);
  /** Interned error code (ECONNRESET, UND_ERR_SOCKET, ...), 0 for none. */
  readonly errorCode = new Uint16Array(CHUNK);
  /** Interned request name (the scenario step). */
  readonly name = new Uint16Array(CHUNK);
  /** Interned X-Served-By response header, 0 when absent. */
  readonly servedBy = new Uint16Array(CHUNK);
  /** Interned X-App-Version response header, 0 when absent. */
  readonly appVersion = new Uint16Array(CHUNK);
  /** Iteration number: the steps of one flow share it. */
  readonly iteration = new Uint32Array(CHUNK);
  /** Index of the connection (undici client) that carried it; 0xffff when none. */
  readonly connection = new Uint16Array(CHUNK);
  /**
   * Local TCP port of that connection's socket when the request ended (0 when unknown): what a
   * per-connection proxy recorded, so a request that got no response can still be put on a pod.
   */
  readonly localPort = new Uint16Array(CHUNK);
  /**
   * Interned request kind: method, route and body shape (`POST /api/v1/licenses/heartbeat {session_id:string}`),
   * 0 when unknown. Requests of one kind that one app version accepted and another refused are a contract break.
   */
  readonly kind = new Uint16Array(CHUNK);
  /**
   * Interned creator of the resource the request used (`version\tpod` of the response that created
   * it, as the scenario tagged it), 0 when untagged: a resource one version created that another
   * answers as unknown is state the versions do not share.
   */
  readonly createdBy = new Uint16Array(CHUNK);
  /** {@link ConnectionUse}: the request was written on a new connection or a reused keep-alive one (0 unknown). */
  readonly connectionUse = new Uint8Array(CHUNK);
  /** Age of that connection (since its TCP connect) when the request was written, ms; NaN when unknown. */
  readonly connectionAge = new Float32Array(CHUNK);
}

/** Strings stored as small integers; id 0 means "absent". */
export class Interner {
  readonly #ids = new Map<string, number>();
  readonly #values: string[] = [''];
  readonly #max: number;
  constructor(max = 0xffff) {
    this.#max = max;
  }
  id(value: string | undefined | null): number {
    if (value === undefined || value === null || value === '') return 0;
    let id = this.#ids.get(value);
    if (id === undefined) {
      if (this.#values.length >= this.#max - 1) {
        // Full: every further value shares one overflow id (the last slot) instead of growing.
        const overflow = '(too many distinct values)';
        id = this.#ids.get(overflow);
        if (id === undefined) {
          id = this.#values.length;
          this.#values.push(overflow);
          this.#ids.set(overflow, id);
        }
        return id;
      }
      id = this.#values.length;
      this.#values.push(value);
      this.#ids.set(value, id);
    }
    return id;
  }
  value(id: number): string | undefined {
    return id === 0 ? undefined : this.#values[id];
  }
  get size(): number {
    return this.#values.length - 1;
  }
  values(): string[] {
    return this.#values.slice(1);
  }
}

/** A row as an object, for NDJSON, tests and reports (not used on the hot path). */
export interface LedgerRow {
  row: number;
  iteration: number;
  name: string;
  outcome: OutcomeName;
  scheduledAt: number;
  issuedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  status: number;
  error: ErrorClassName | null;
  errorCode: string | null;
  servedBy: string | null;
  appVersion: string | null;
  connection: number | null;
  localPort: number | null;
  /** The request's kind (method, route, body shape), null when not recorded. */
  kind: string | null;
  /** Who created the resource the request used (the scenario's tag), null when untagged. */
  createdBy: Creator | null;
  /** The request went out on a new connection or a reused keep-alive one (null when unknown). */
  connectionUse: ConnectionUseName | null;
  /** That connection's age when the request was written, ms (null when unknown). */
  connectionAgeMs: number | null;
}

/** The app version and pod whose response created a resource (either may be unknown). */
export interface Creator {
  version: string | null;
  pod: string | null;
}

type CreatorTag = { version?: string | null; pod?: string | null } | null | undefined;
const creatorKey = (c: CreatorTag): string | null => (c && (c.version || c.pod) ? `${c.version ?? ''}\t${c.pod ?? ''}` : null);
const creatorOf = (key: string | undefined): Creator | null => {
  if (key === undefined) return null;
  const [version, pod] = key.split('\t');
  return { version: version || null, pod: pod || null };
};

export class Ledger {
  readonly #chunks: LedgerChunk[] = [];
  #length = 0;
  /** Wall-clock (epoch ms) and performance.now() of time zero; all ledger times are relative to it. */
  readonly origin: { epochMs: number; perfMs: number };
  readonly names = new Interner();
  readonly servedBy = new Interner();
  readonly appVersions = new Interner();
  readonly errorCodes = new Interner();
  readonly kinds = new Interner();
  readonly creators = new Interner();

  constructor(originPerfMs = performance.now()) {
    this.origin = { perfMs: originPerfMs, epochMs: performance.timeOrigin + originPerfMs };
  }

  get length(): number {
    return this.#length;
  }

  /** Wall-clock epoch milliseconds of a ledger time (for joins with a cluster timeline). */
  epochMs(t: number): number {
    return this.origin.epochMs + t;
  }

  /** Appends a pending row and returns its index. */
  add(scheduledAt: number, issuedAt: number, nameId: number, iteration: number): number {
    const row = this.#length++;
    const ci = row >>> CHUNK_BITS;
    if (ci === this.#chunks.length) this.#chunks.push(new LedgerChunk());
    const c = this.#chunks[ci];
    const i = row & MASK;
    c.scheduledAt[i] = scheduledAt;
    c.issuedAt[i] = issuedAt;
    c.startedAt[i] = NaN;
    c.endedAt[i] = NaN;
    c.name[i] = nameId;
    c.iteration[i] = iteration;
    c.connection[i] = 0xffff;
    c.connectionAge[i] = NaN;
    return row;
  }

  /** Appends a row for a request that could not start on time. */
  addDropped(scheduledAt: number, issuedAt: number, nameId: number, iteration: number): number {
    const row = this.add(scheduledAt, issuedAt, nameId, iteration);
    this.#chunks[row >>> CHUNK_BITS].outcome[row & MASK] = Outcome.dropped;
    return row;
  }

  /** Records what the request was (its kind id in `kinds`) and who created the resource it used (id in `creators`). */
  describe(row: number, kindId: number, createdById: number): void {
    const c = this.#chunks[row >>> CHUNK_BITS];
    const i = row & MASK;
    c.kind[i] = kindId;
    c.createdBy[i] = createdById;
  }

  /** The id in `creators` of a creator (0 for none). */
  creatorId(c: CreatorTag): number {
    return this.creators.id(creatorKey(c));
  }

  /** The request went out on a new (`ConnectionUse.new`) or a reused connection of this age (ms). */
  markConnection(row: number, use: ConnectionUseId, ageMs: number): void {
    const c = this.#chunks[row >>> CHUNK_BITS];
    const i = row & MASK;
    c.connectionUse[i] = use;
    c.connectionAge[i] = ageMs;
  }

  markStarted(row: number, t: number, connection: number): void {
    const c = this.#chunks[row >>> CHUNK_BITS];
    const i = row & MASK;
    c.startedAt[i] = t;
    c.connection[i] = connection;
  }

  finish(
    row: number,
    t: number,
    outcome: OutcomeId,
    status: number,
    errorClass: ErrorClassId,
    errorCodeId: number,
    servedById: number,
    appVersionId: number,
    localPort = 0,
  ): void {
    const c = this.#chunks[row >>> CHUNK_BITS];
    const i = row & MASK;
    c.endedAt[i] = t;
    c.outcome[i] = outcome;
    c.status[i] = status;
    c.errorClass[i] = errorClass;
    c.errorCode[i] = errorCodeId;
    c.servedBy[i] = servedById;
    c.appVersion[i] = appVersionId;
    c.localPort[i] = localPort;
  }

  // Column readers (row index → value).
  scheduledAt(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].scheduledAt[row & MASK];
  }
  issuedAt(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].issuedAt[row & MASK];
  }
  startedAt(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].startedAt[row & MASK];
  }
  endedAt(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].endedAt[row & MASK];
  }
  status(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].status[row & MASK];
  }
  outcome(row: number): OutcomeId {
    return this.#chunks[row >>> CHUNK_BITS].outcome[row & MASK] as OutcomeId;
  }
  errorClass(row: number): ErrorClassId {
    return this.#chunks[row >>> CHUNK_BITS].errorClass[row & MASK] as ErrorClassId;
  }
  nameId(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].name[row & MASK];
  }
  servedById(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].servedBy[row & MASK];
  }
  appVersionId(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].appVersion[row & MASK];
  }
  iteration(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].iteration[row & MASK];
  }
  connection(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].connection[row & MASK];
  }
  errorCodeId(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].errorCode[row & MASK];
  }
  localPort(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].localPort[row & MASK];
  }
  kindId(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].kind[row & MASK];
  }
  createdById(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].createdBy[row & MASK];
  }
  connectionUse(row: number): ConnectionUseId {
    return this.#chunks[row >>> CHUNK_BITS].connectionUse[row & MASK] as ConnectionUseId;
  }
  connectionAge(row: number): number {
    return this.#chunks[row >>> CHUNK_BITS].connectionAge[row & MASK];
  }
  /** The creator interned as `id` in `creators`. */
  creator(id: number): Creator | null {
    return creatorOf(this.creators.value(id));
  }

  /**
   * Appends a whole row, e.g. one another engine recorded (read back with {@link rowFromNdjson});
   * times are ms since this ledger's origin. Returns its index.
   */
  append(r: Omit<LedgerRow, 'row'>): number {
    const nameId = this.names.id(r.name);
    if (r.outcome === 'dropped') return this.addDropped(r.scheduledAt, r.issuedAt, nameId, r.iteration);
    const row = this.add(r.scheduledAt, r.issuedAt, nameId, r.iteration);
    this.describe(row, this.kinds.id(r.kind), this.creatorId(r.createdBy));
    if (r.connectionUse) this.markConnection(row, ConnectionUse[r.connectionUse], r.connectionAgeMs ?? NaN);
    if (r.startedAt !== null) this.markStarted(row, r.startedAt, r.connection ?? 0xffff);
    if (r.outcome !== 'pending') {
      const err = r.error === null ? 0 : errorClassNames.indexOf(r.error);
      this.finish(
        row,
        r.endedAt ?? NaN,
        Outcome[r.outcome],
        r.status,
        (err < 0 ? errorClassNames.indexOf('other') : err) as ErrorClassId,
        this.errorCodes.id(r.errorCode),
        this.servedBy.id(r.servedBy),
        this.appVersions.id(r.appVersion),
        r.localPort ?? 0,
      );
    }
    return row;
  }

  /** The row as an object (times in ms since the origin). */
  row(row: number): LedgerRow {
    if (row < 0 || row >= this.#length) throw new RangeError(`row ${row} outside 0..${this.#length - 1}`);
    const c = this.#chunks[row >>> CHUNK_BITS];
    const i = row & MASK;
    const started = c.startedAt[i];
    const ended = c.endedAt[i];
    const err = c.errorClass[i];
    return {
      row,
      iteration: c.iteration[i],
      name: this.names.value(c.name[i]) ?? '',
      outcome: outcomeNames[c.outcome[i]],
      scheduledAt: c.scheduledAt[i],
      issuedAt: c.issuedAt[i],
      startedAt: Number.isNaN(started) ? null : started,
      endedAt: Number.isNaN(ended) ? null : ended,
      status: c.status[i],
      error: err === 0 ? null : errorClassName(err),
      errorCode: this.errorCodes.value(c.errorCode[i]) ?? null,
      servedBy: this.servedBy.value(c.servedBy[i]) ?? null,
      appVersion: this.appVersions.value(c.appVersion[i]) ?? null,
      connection: c.connection[i] === 0xffff ? null : c.connection[i],
      localPort: c.localPort[i] === 0 ? null : c.localPort[i],
      kind: this.kinds.value(c.kind[i]) ?? null,
      createdBy: this.creator(c.createdBy[i]),
      connectionUse: useNames[c.connectionUse[i]],
      connectionAgeMs: Number.isNaN(c.connectionAge[i]) ? null : Math.round(c.connectionAge[i] * 1000) / 1000,
    };
  }

  *rows(): IterableIterator<LedgerRow> {
    for (let r = 0; r < this.#length; r++) yield this.row(r);
  }

  /** Counts per outcome; at the end of a run pending must be 0. */
  tally(): Record<OutcomeName, number> {
    const t = { pending: 0, succeeded: 0, failed: 0, dropped: 0 };
    for (let r = 0; r < this.#length; r++) t[outcomeNames[this.outcome(r)]]++;
    return t;
  }

  /** Bytes held by the columns (allocated chunks), and per recorded request. */
  memory(): { bytes: number; bytesPerRequest: number; bytesPerRow: number } {
    const bytes = this.#chunks.length * CHUNK * LEDGER_BYTES_PER_ROW;
    return { bytes, bytesPerRequest: this.#length ? bytes / this.#length : 0, bytesPerRow: LEDGER_BYTES_PER_ROW };
  }

  /** One NDJSON line for a row; times are wall-clock epoch milliseconds (µs precision). See {@link rowFromNdjson}. */
  toNdjsonLine(row: number): string {
    const r = this.row(row);
    const at = (t: number | null) => (t === null ? null : Math.round(this.epochMs(t) * 1000) / 1000);
    return JSON.stringify({
      row: r.row,
      iteration: r.iteration,
      name: r.name,
      outcome: r.outcome,
      scheduled_at: at(r.scheduledAt),
      issued_at: at(r.issuedAt),
      started_at: at(r.startedAt),
      ended_at: at(r.endedAt),
      status: r.status,
      error: r.error,
      error_code: r.errorCode,
      served_by: r.servedBy,
      app_version: r.appVersion,
      connection: r.connection,
      local_port: r.localPort,
      kind: r.kind,
      created_by: r.createdBy,
      connection_use: r.connectionUse,
      connection_age_ms: r.connectionAgeMs,
    });
  }
}

/** A ledger row as one NDJSON line carries it ({@link Ledger.toNdjsonLine}): times are epoch milliseconds. */
export interface LedgerNdjsonRow {
  row: number;
  iteration: number;
  name: string;
  outcome: OutcomeName;
  scheduled_at: number;
  issued_at: number;
  started_at: number | null;
  ended_at: number | null;
  status: number;
  error: ErrorClassName | null;
  error_code: string | null;
  served_by: string | null;
  app_version: string | null;
  connection: number | null;
  local_port: number | null;
  /** Absent in lines written before the column existed. */
  kind?: string | null;
  created_by?: Creator | null;
  connection_use?: ConnectionUseName | null;
  connection_age_ms?: number | null;
}

const time = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${what} must be a number`);
  return v;
};
const timeOrNull = (v: unknown, what: string): number | null => (v === null || v === undefined ? null : time(v, what));
const textOrNull = (v: unknown, what: string): string | null => {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string or null`);
  return v;
};

const useNames: Array<ConnectionUseName | null> = [null, 'new', 'reused'];
const useOrNull = (v: unknown): ConnectionUseName | null => {
  if (v === null || v === undefined) return null;
  if (v !== 'new' && v !== 'reused') throw new TypeError(`connection_use ${JSON.stringify(v)} is not new, reused or null`);
  return v;
};

const creatorOrNull = (v: unknown): Creator | null => {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') throw new TypeError('created_by must be an object {version, pod} or null');
  const c = v as Record<string, unknown>;
  return { version: textOrNull(c.version, 'created_by.version'), pod: textOrNull(c.pod, 'created_by.pod') };
};

/**
 * The inverse of {@link Ledger.toNdjsonLine}: a parsed NDJSON row (from another process, e.g. a load
 * agent) as a row of a ledger whose origin is `originEpochMs`. Throws a TypeError on a malformed row.
 */
export function rowFromNdjson(value: unknown, originEpochMs: number): Omit<LedgerRow, 'row'> {
  const o = value as Partial<LedgerNdjsonRow>;
  if (!o || typeof o !== 'object') throw new TypeError('a ledger row must be a JSON object');
  if (!outcomeNames.includes(o.outcome as OutcomeName))
    throw new TypeError(`outcome "${String(o.outcome)}" is not one of ${outcomeNames.join(', ')}`);
  if (o.error !== null && o.error !== undefined && !errorClassNames.includes(o.error))
    throw new TypeError(`error "${String(o.error)}" is not an error class`);
  const rel = (t: number | null) => (t === null ? null : t - originEpochMs);
  const iteration = time(o.iteration, 'iteration');
  const status = time(o.status ?? 0, 'status');
  return {
    iteration,
    name: textOrNull(o.name, 'name') ?? '',
    outcome: o.outcome as OutcomeName,
    scheduledAt: time(o.scheduled_at, 'scheduled_at') - originEpochMs,
    issuedAt: time(o.issued_at, 'issued_at') - originEpochMs,
    startedAt: rel(timeOrNull(o.started_at, 'started_at')),
    endedAt: rel(timeOrNull(o.ended_at, 'ended_at')),
    status,
    error: o.error ?? null,
    errorCode: textOrNull(o.error_code, 'error_code'),
    servedBy: textOrNull(o.served_by, 'served_by'),
    appVersion: textOrNull(o.app_version, 'app_version'),
    connection: timeOrNull(o.connection, 'connection'),
    localPort: timeOrNull(o.local_port, 'local_port'),
    kind: textOrNull(o.kind, 'kind'),
    createdBy: creatorOrNull(o.created_by),
    connectionUse: useOrNull(o.connection_use),
    connectionAgeMs: timeOrNull(o.connection_age_ms, 'connection_age_ms'),
  };
}
