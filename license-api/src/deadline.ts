import { DependencyError } from './errors.ts';

/**
 * The point in time by which a request must be answered (REQUEST_DEADLINE_MS after it arrived).
 * Every wait a request does on a dependency (a pooled connection, a statement, the heartbeat
 * batcher's queue, Redis) is bounded by what is left of it, so a stalled dependency costs a
 * request at most its deadline, never a multiple of a per-step timeout.
 */
export class Deadline {
  readonly at: number;
  constructor(ms: number, now = Date.now()) {
    this.at = now + ms;
  }

  /** Milliseconds left (0 once passed). */
  remaining(): number {
    return Math.max(0, this.at - Date.now());
  }

  expired(): boolean {
    return Date.now() >= this.at;
  }

  /** Throws the typed timeout for `dependency` if the deadline has passed. */
  check(dependency: string): void {
    if (this.expired()) throw new DependencyError(dependency, new Error('request deadline passed'), { timedOut: true });
  }

  /**
   * Waits for `promise` at most until the deadline; then rejects with the typed timeout. `onLate`
   * receives the value if it arrives after we gave up (to hand back a pooled connection, say).
   */
  async race<T>(dependency: string, promise: Promise<T>, onLate?: (value: T) => void): Promise<T> {
    this.check(dependency);
    let timer: NodeJS.Timeout | undefined;
    let gaveUp = false;
    try {
      return await Promise.race([
        promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            gaveUp = true;
            reject(new DependencyError(dependency, new Error('request deadline passed'), { timedOut: true }));
          }, this.remaining());
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (gaveUp)
        promise.then(
          (v) => onLate?.(v),
          () => {},
        );
    }
  }
}
