import { RingBuffer } from './ring-buffer.ts';

/** How a proxied connection ended. */
export type ConnectionOutcome =
  /** Both sides closed normally (FIN both ways). */
  | 'completed'
  /** Accepted, then reset at once: the Service had no routable endpoint. */
  | 'no-ready-endpoint'
  /** The chosen backend refused or was unreachable; the client got a reset, no other backend was tried. */
  | 'backend-connect-failed'
  /** The backend reset or failed after the connection was established; passed on to the client as a reset. */
  | 'backend-error'
  /** The client reset or failed; passed on to the backend as a reset. */
  | 'client-error'
  /** Cut by ServiceProxy.stop(). */
  | 'proxy-stopped';

/** One accepted client connection and what the proxy did with it. Updated in place until closed. */
export interface ConnectionRecord {
  /** 1, 2, 3... per proxy. */
  id: number;
  /** "namespace/name" of the Service. */
  service: string;
  portName: string;
  nodePort: number;
  clientAddress: string;
  clientPort: number;
  /** The endpoint chosen for this connection (absent when there was none). */
  backend?: {
    ip: string;
    port: number;
    podName?: string;
    podNamespace?: string;
    /** Conditions at the moment it was chosen (terminating=true means the fallback picked it). */
    ready: boolean;
    terminating: boolean;
  };
  /** Wall clock (Date.now()) and monotonic (performance.now()) times. */
  openedAt: number;
  openedAtPerf: number;
  backendConnectedAtPerf?: number;
  closedAt?: number;
  closedAtPerf?: number;
  /** Bytes read from the client (sent to the backend) and written to the client. */
  bytesFromClient: number;
  bytesToClient: number;
  outcome?: ConnectionOutcome;
  /** Error code or message behind a non-completed outcome (e.g. ECONNREFUSED). */
  error?: string;
}

/** Bounded record of connections, oldest dropped first, with lookup by the client's port. */
export class ConnectionLog {
  readonly #ring: RingBuffer<ConnectionRecord>;
  readonly #byClientPort = new Map<number, ConnectionRecord>();

  constructor(capacity: number) {
    this.#ring = new RingBuffer(capacity);
  }

  add(record: ConnectionRecord): void {
    const evicted = this.#ring.push(record);
    if (evicted && this.#byClientPort.get(evicted.clientPort) === evicted) this.#byClientPort.delete(evicted.clientPort);
    this.#byClientPort.set(record.clientPort, record);
  }

  /** The most recent connection from this client port (ports are reused: check openedAt if it matters). */
  lookup(clientPort: number): ConnectionRecord | undefined {
    return this.#byClientPort.get(clientPort);
  }

  all(): ConnectionRecord[] {
    return this.#ring.toArray();
  }

  /** Records pushed out because the log was full. */
  get dropped(): number {
    return this.#ring.dropped;
  }
}
