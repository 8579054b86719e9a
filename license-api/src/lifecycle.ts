/**
 * Where the process is in its life. `draining` is the endpoint-propagation window after SIGTERM:
 * readiness already answers 503 and requests are still served, each connection ending after the
 * requests it has in flight (`Connection: close` on the last); `closing`: no new connection is
 * accepted, connections without a request are closed, in-flight requests finish.
 */
export type Phase = 'starting' | 'serving' | 'draining' | 'closing';

export class Lifecycle {
  #phase: Phase = 'starting';
  /** When the phase became `serving` (epoch ms), or undefined before. */
  servingSince: number | undefined;

  get phase(): Phase {
    return this.#phase;
  }
  set phase(p: Phase) {
    if (p === 'serving' && this.#phase !== 'serving') this.servingSince = Date.now();
    this.#phase = p;
  }
}
