/**
 * A fixed set of keep-alive connections (one undici Client each, no pipelining) with our own queue in
 * front. Owning the queue (instead of undici's Pool) keeps the "waiting for a connection" time visible
 * per request, lets a queued request time out, and spreads requests round-robin over every
 * connection, so a per-connection load balancer (kube-proxy, our service proxy) reaches every backend.
 */
import { Client, buildConnector, type Dispatcher } from 'undici';
import { RingQueue } from './ring-queue.ts';

/** A request waiting for, or running on, a connection. */
export interface PoolJob {
  /** True once the request has been recorded (e.g. it timed out while queued): skip it. */
  readonly recorded: boolean;
  /** Starts the request on connection `index`; the job must call `pool.release(index)` once undici is done with it. */
  begin(index: number, client: Dispatcher): void;
}

export interface ConnectionPoolOptions {
  /** Origin to connect to (already vetted by the target guard), e.g. http://127.0.0.1:8080. */
  origin: string;
  connections: number;
  /** TLS server name when the origin is an address but the URL named a host. */
  servername?: string;
  rejectUnauthorized?: boolean;
  connectTimeoutMs: number;
  /** Backstop for undici's own idle timers; the engine enforces the real request timeout itself. */
  idleTimeoutMs: number;
}

export class ConnectionPool {
  readonly #clients: Client[];
  /** Local port of each connection's current socket (0 before the first connect). */
  readonly #localPorts: Uint16Array;
  readonly #free = new RingQueue<number>();
  readonly #waiting = new RingQueue<PoolJob>(1024);
  #busy = 0;

  constructor(opts: ConnectionPoolOptions) {
    if (!Number.isInteger(opts.connections) || opts.connections < 1 || opts.connections > 0xfffe) {
      throw new RangeError('connections must be a whole number between 1 and 65534');
    }
    this.#clients = [];
    this.#localPorts = new Uint16Array(opts.connections);
    const connector = buildConnector({
      servername: opts.servername,
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
      timeout: opts.connectTimeoutMs,
    });
    for (let i = 0; i < opts.connections; i++) {
      this.#clients.push(
        new Client(opts.origin, {
          pipelining: 1,
          headersTimeout: opts.idleTimeoutMs,
          bodyTimeout: opts.idleTimeoutMs,
          // undici's own connector, noting each new socket's local port (for attribution through a proxy).
          connect: (o, cb) =>
            connector(o, (err, socket) => {
              if (socket) this.#localPorts[i] = socket.localPort ?? 0;
              (cb as (e: Error | null, s: typeof socket) => void)(err, socket);
            }),
        }),
      );
      this.#free.push(i);
    }
  }

  get size(): number {
    return this.#clients.length;
  }
  /** Local port of connection `index`'s current socket, 0 when it has none yet. */
  localPort(index: number): number {
    return index >= 0 ? (this.#localPorts[index] ?? 0) : 0;
  }
  /** Requests waiting for a free connection. */
  get waiting(): number {
    return this.#waiting.length;
  }
  /** Connections carrying a request. */
  get busy(): number {
    return this.#busy;
  }

  /** Starts the job on the connection idle longest, or queues it. */
  submit(job: PoolJob): void {
    const index = this.#free.shift();
    if (index === undefined) {
      this.#waiting.push(job);
      return;
    }
    this.#busy++;
    job.begin(index, this.#clients[index]);
  }

  /** Connection `index` is done with its request: give it to the next waiting job or mark it free. */
  release(index: number): void {
    for (let job = this.#waiting.shift(); job !== undefined; job = this.#waiting.shift()) {
      if (!job.recorded) {
        job.begin(index, this.#clients[index]);
        return;
      }
    }
    this.#busy--;
    this.#free.push(index);
  }

  /** Queued jobs, oldest first (for timeouts and aborts). */
  waitingJobs(): Iterable<PoolJob> {
    return this.#waiting;
  }

  /** Drops already-recorded jobs at the head of the queue (they timed out or were aborted). */
  pruneWaiting(): void {
    while (this.#waiting.length && this.#waiting.peek()!.recorded) this.#waiting.shift();
  }

  /** Closes every connection; requests still running fail with an abort error. */
  async destroy(): Promise<void> {
    await Promise.allSettled(this.#clients.map((c) => c.destroy()));
  }
}
