/**
 * A fixed set of keep-alive connections (one undici Client each, no pipelining) with our own queue in
 * front. Owning the queue (instead of undici's Pool) keeps the "waiting for a connection" time visible
 * per request, lets a queued request time out, and spreads requests round-robin over every
 * connection, so a per-connection load balancer (kube-proxy, our service proxy) reaches every backend.
 *
 * `watchIdle: false` makes clients that do not watch their idle connections: the socket is
 * half-open (allowHalfOpen) and the server's FIN on an idle connection is held back from undici
 * until the next request has been written on it, then passed on, so that request fails as
 * undici's "other side closed" (what such a client gets: its request went out on a connection
 * the server had closed without telling it, e.g. without `Connection: close`). A close while a
 * request is on the connection is passed on at once, as always.
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
  /** The first connection's number (several pools in one run number their connections apart). Default 0. */
  firstIndex?: number;
  /**
   * Watch idle connections (default true): a server's close of an idle keep-alive connection is
   * seen at once (undici also checks an idle socket before reusing it). false: clients that learn
   * of it only when they next write on it, as clients without a stale-connection check do; the
   * request written there fails as "other side closed". See {@link ConnectionPool}.
   */
  watchIdle?: boolean;
}

export class ConnectionPool {
  readonly #clients: Client[];
  /** Number of the first connection: every index in and out of this class is `first + i`. */
  readonly first: number;
  /** Local port of each connection's current socket (0 before the first connect). */
  readonly #localPorts: Uint16Array;
  /** performance.now() when each connection's current socket connected. */
  readonly #connectedAt: Float64Array;
  /** Requests written on each connection's current socket. */
  readonly #uses: Uint32Array;
  /** 1 while a connection carries a request (given to a job, not yet released). */
  readonly #inUse: Uint8Array;
  /** watchIdle false: the held-back end of an idle connection's socket, replayed after its next write. */
  readonly #heldEnd: Array<(() => void) | null>;
  readonly #free = new RingQueue<number>();
  readonly #waiting = new RingQueue<PoolJob>(1024);
  #busy = 0;

  constructor(opts: ConnectionPoolOptions) {
    const first = opts.firstIndex ?? 0;
    if (!Number.isInteger(opts.connections) || opts.connections < 1 || first + opts.connections > 0xfffe) {
      throw new RangeError('connections must be a whole number between 1 and 65534 (over every pool of the run)');
    }
    this.first = first;
    this.#clients = [];
    this.#localPorts = new Uint16Array(opts.connections);
    this.#connectedAt = new Float64Array(opts.connections);
    this.#uses = new Uint32Array(opts.connections);
    this.#inUse = new Uint8Array(opts.connections);
    this.#heldEnd = new Array(opts.connections).fill(null);
    const watchIdle = opts.watchIdle ?? true;
    const connector = buildConnector({
      servername: opts.servername,
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
      timeout: opts.connectTimeoutMs,
      ...(watchIdle ? {} : { allowHalfOpen: true }),
    });
    for (let i = 0; i < opts.connections; i++) {
      this.#clients.push(
        new Client(opts.origin, {
          pipelining: 1,
          headersTimeout: opts.idleTimeoutMs,
          bodyTimeout: opts.idleTimeoutMs,
          // undici's own connector, noting each new socket's local port (for attribution through a
          // proxy) and when it connected (requests on it are counted by `use`: new or reused, and its age).
          connect: (o, cb) =>
            connector(o, (err, socket) => {
              if (socket) {
                this.#localPorts[i] = socket.localPort ?? 0;
                this.#connectedAt[i] = performance.now();
                this.#uses[i] = 0;
                this.#heldEnd[i] = null;
                if (!watchIdle) this.#holdIdleEnd(i, socket);
              }
              (cb as (e: Error | null, s: typeof socket) => void)(err, socket);
            }),
        }),
      );
      this.#free.push(first + i);
    }
  }

  get size(): number {
    return this.#clients.length;
  }
  /** Whether connection `index` is one of this pool's. */
  has(index: number): boolean {
    return index >= this.first && index < this.first + this.#clients.length;
  }
  /** Local port of connection `index`'s current socket, 0 when it has none yet. */
  localPort(index: number): number {
    return index >= 0 ? (this.#localPorts[index - this.first] ?? 0) : 0;
  }
  /**
   * A request is being written on connection `index` (undici's onRequestStart runs just before the
   * write, on the socket it writes to): how many were written on this socket before it (0: a new
   * connection, opened for this request).
   */
  use(index: number): number {
    const i = index - this.first;
    const replay = this.#heldEnd[i];
    if (replay) {
      // The server had closed this idle connection; the request is written now, then the end is seen.
      this.#heldEnd[i] = null;
      setImmediate(replay);
    }
    return this.#uses[i]++;
  }

  /** watchIdle false: an 'end' of the socket while its connection is idle waits for the next write. */
  #holdIdleEnd(i: number, socket: { emit(event: string | symbol, ...args: unknown[]): boolean }): void {
    const emit = socket.emit;
    socket.emit = (event: string | symbol, ...args: unknown[]) => {
      if (event === 'end' && this.#inUse[i] === 0) {
        this.#heldEnd[i] = () => emit.call(socket, event, ...args);
        return true;
      }
      return emit.call(socket, event, ...args);
    };
  }
  /** Milliseconds since connection `index`'s current socket connected (at `now`, performance.now()). */
  socketAge(index: number, now: number): number {
    return now - this.#connectedAt[index - this.first];
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
    this.#inUse[index - this.first] = 1;
    job.begin(index, this.#clients[index - this.first]);
  }

  /** Connection `index` is done with its request: give it to the next waiting job or mark it free. */
  release(index: number): void {
    for (let job = this.#waiting.shift(); job !== undefined; job = this.#waiting.shift()) {
      if (!job.recorded) {
        job.begin(index, this.#clients[index - this.first]);
        return;
      }
    }
    this.#busy--;
    this.#inUse[index - this.first] = 0;
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
