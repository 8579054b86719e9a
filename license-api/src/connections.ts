import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Requests one connection may have in flight: read and handed to the app, their answer not yet
 * taken by the kernel. At this many the connection stops reading. A request past it can only have
 * come in the same read (the client sent more without waiting for answers): it is not processed,
 * nor is any later one, and the connection ends once the requests in flight are answered. Real
 * clients pipeline far less (undici's default depth is 1; browsers never pipeline).
 */
export const MAX_IN_FLIGHT_PER_CONNECTION = 16;

/** A connection whose client has not taken an answer for this long is closed (it does not read). */
export const CLIENT_READ_TIMEOUT_MS = 30_000;

/** How often connections are checked for clients that do not read. */
const CHECK_INTERVAL_MS = 1000;

/** After we end a connection, how long the client has to read the last answers and close its side. */
const END_LINGER_MS = 2000;

interface Conn {
  readonly socket: Socket;
  /** Responses handed to the app and not finished (their last byte not taken by the kernel), oldest first. */
  readonly inFlight: ServerResponse[];
  /** Reading stopped by us (Node's own back-pressure pauses and resumes independently). */
  paused: boolean;
  /** No further request is processed: the connection ends once the requests in flight are answered. */
  ending: boolean;
  /** Since when the oldest response has been complete but not taken by the kernel (the client does not read). */
  stalledSince?: number;
}

export interface ConnectionsOptions {
  /**
   * Whether connections are to be closed after their requests in flight (the drain): the last
   * response in flight on each then carries `Connection: close`, never an earlier one (the client
   * would not get the answers behind it).
   */
  closing?: () => boolean;
  /** Called for each connection ended or closed to protect the process (for metrics and logs). */
  onProtect?: (reason: 'pipelined_too_deep' | 'not_reading') => void;
}

/**
 * Every open connection of the server and the requests each has in flight. Bounds what a client
 * can make the process hold, whatever it sends, and ends connections without losing an answer:
 *
 * - Node answers pipelined requests in order and keeps the answers behind one the client has not
 *   read; its own back-pressure stops reading only after a whole read (64 KiB: up to ~1,900 small
 *   requests) was parsed and dispatched. A client that wrote thousands of requests and never read
 *   made the process buffer every answer (149 MB to 1.7 GB in 6 s). Here a connection stops
 *   reading at MAX_IN_FLIGHT_PER_CONNECTION requests in flight, and past it processes nothing more.
 * - `Connection: close` goes on the last response in flight on a connection, and once a response
 *   carries it no later request on that connection is processed (RFC 9112, 9.6): a request
 *   answered by nobody is never one that took effect.
 * - A connection whose oldest answer has waited CLIENT_READ_TIMEOUT_MS for its client to read is
 *   closed (Node has no such timeout: it would hold the answers and the connection forever).
 */
export class Connections {
  private readonly conns = new Map<Socket, Conn>();
  private readonly app: RequestListener;
  private readonly closing: () => boolean;
  private readonly onProtect: NonNullable<ConnectionsOptions['onProtect']>;
  private timer: NodeJS.Timeout | undefined;
  /** Connections ended or closed by us, by reason (for logs and tests). */
  readonly stats = { pipelinedTooDeep: 0, notReading: 0 };

  constructor(app: RequestListener, opts: ConnectionsOptions = {}) {
    this.app = app;
    this.closing = opts.closing ?? (() => false);
    this.onProtect = opts.onProtect ?? (() => {});
  }

  /** The server's request listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    const c = this.conns.get(socket) ?? this.track(socket);
    // Read in the same chunk as a request after which nothing is processed (Node dispatches a whole read).
    if (c.ending || socket.destroyed) return;
    if (c.inFlight.length >= MAX_IN_FLIGHT_PER_CONNECTION) {
      this.stats.pipelinedTooDeep++;
      this.onProtect('pipelined_too_deep');
      this.stopProcessing(c);
      return;
    }
    c.inFlight.push(res);
    if (c.inFlight.length >= MAX_IN_FLIGHT_PER_CONNECTION) this.pause(c);
    res.once('close', () => this.finished(c, res));
    // Decided when the headers are written, not when the request arrived: a request that began
    // before SIGTERM and ends after it needs the header too, and one pipelined behind it may have
    // come meanwhile.
    const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => ServerResponse;
    res.writeHead = ((...args: unknown[]) => {
      if ((c.ending || this.closing()) && c.inFlight.at(-1) === res && !res.headersSent) res.setHeader('Connection', 'close');
      const result = writeHead(...args);
      if (!res.shouldKeepAlive || /(^|,)\s*close\s*(,|$)/i.test(String(res.getHeader('connection') ?? '')))
        this.stopProcessing(c);
      return result;
    }) as ServerResponse['writeHead'];
    this.app(req, res);
  };

  /** Tracks the server's connections from now on. */
  attach(server: Server): void {
    server.on('connection', (s: Socket) => this.track(s));
    this.timer = setInterval(() => this.closeNotReading(CLIENT_READ_TIMEOUT_MS), CHECK_INTERVAL_MS);
    this.timer.unref();
    server.once('close', () => clearInterval(this.timer));
  }

  /** Open connections. */
  get size(): number {
    return this.conns.size;
  }

  /** Closes every connection with no request in flight: idle between requests, or nothing (or only part of the headers) sent. */
  closeIdle(): void {
    for (const c of this.conns.values()) if (c.inFlight.length === 0) c.socket.destroy();
  }

  /** Closes connections whose oldest answer has been complete, but not taken by the client, for `ms`. */
  closeNotReading(ms: number, now = Date.now()): void {
    for (const c of this.conns.values()) {
      const oldest = c.inFlight[0];
      if (!oldest || !oldest.writableEnded || oldest.writableFinished) {
        c.stalledSince = undefined;
        continue;
      }
      c.stalledSince ??= now;
      if (now - c.stalledSince >= ms) {
        this.stats.notReading++;
        this.onProtect('not_reading');
        c.socket.destroy();
      }
    }
  }

  private track(socket: Socket): Conn {
    const known = this.conns.get(socket);
    if (known) return known;
    const c: Conn = { socket, inFlight: [], paused: false, ending: false };
    this.conns.set(socket, c);
    socket.once('close', () => this.conns.delete(socket));
    // Node resumes a socket it paused itself as soon as its own buffers are low; ours stays paused.
    socket.on('resume', () => {
      if (c.paused) socket.pause();
    });
    return c;
  }

  private finished(c: Conn, res: ServerResponse): void {
    const i = c.inFlight.indexOf(res);
    if (i >= 0) c.inFlight.splice(i, 1);
    if (i === 0) c.stalledSince = undefined;
    if (c.ending) {
      if (c.inFlight.length === 0) this.end(c);
    } else if (c.paused && c.inFlight.length < MAX_IN_FLIGHT_PER_CONNECTION && !c.socket.destroyed) {
      c.paused = false;
      c.socket.resume();
    }
  }

  /** Processes no further request on `c`; it ends once its requests in flight are answered. */
  private stopProcessing(c: Conn): void {
    if (c.ending) return;
    c.ending = true;
    this.pause(c);
    if (!ignoreFurtherRequests(c.socket)) {
      // Node would keep every request of the read, with a response, until the connection closes.
      c.socket.destroy();
      return;
    }
    if (c.inFlight.length === 0) this.end(c);
  }

  private pause(c: Conn): void {
    if (c.paused) return;
    c.paused = true;
    c.socket.pause();
  }

  /** Ends our side once the answers are written; closes the connection if the client does not close its side soon. */
  private end(c: Conn): void {
    if (c.socket.destroyed) return;
    if (!c.socket.writableEnded) c.socket.end();
    const linger = setTimeout(() => c.socket.destroy(), END_LINGER_MS);
    linger.unref();
    c.socket.once('close', () => clearTimeout(linger));
  }
}

/**
 * Makes Node drop, as they are parsed, the requests that follow on this connection. Node parses a
 * whole read before any back-pressure applies and keeps each request of it, with a response
 * object, until the connection closes: ~1,900 pairs (several MB) per connection for a 64 KiB read
 * of small pipelined requests. Replaces the parser's internal `onIncoming` (what hands a parsed
 * request to the server); returns false where Node has no such hook, and the caller then closes
 * the connection at once instead.
 */
function ignoreFurtherRequests(socket: Socket): boolean {
  const parser = (socket as unknown as { parser?: { onIncoming?: unknown } | null }).parser;
  if (!parser || typeof parser.onIncoming !== 'function') return false;
  parser.onIncoming = () => 0;
  return true;
}
