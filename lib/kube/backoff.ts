/**
 * How long a Kubernetes client waits before it tries the apiserver again after an error: the
 * back-off of client-go's reflector (k8s.io/client-go v0.37.2, tools/cache/reflector.go:
 * `defaultBackoffInit` 800 ms, `defaultBackoffFactor` 2, `defaultBackoffJitter` 1.0,
 * `defaultBackoffMax` 30 s, `defaultBackoffReset` 2 min; the arithmetic is apimachinery's
 * `wait.Backoff.Step` and `backoffManager.Step`). Every informer of the kubelet and of kube-proxy
 * waits this way, so after an apiserver outage of a minute or two they come back at a random time up
 * to 60 s after it (the comment in reflector.go: "backoff will stop at [30,60) sec interval"). The
 * embedded cluster's node agent and Service proxy wait the same, so that what a workload sees after
 * a control-plane outage here is no kinder than on a real cluster.
 */

export interface BackoffOptions {
  initialMs: number;
  /** Each step multiplies the base by this (0: constant). */
  factor: number;
  /** Each wait is the base times [1, 1 + jitter). */
  jitter: number;
  /** The base stops growing here; the waits then lie in [cap, cap × (1 + jitter)). */
  capMs: number;
  /** The whole back-off starts again from `initialMs` when this long has passed since it last did. */
  resetMs: number;
}

/** client-go's reflector back-off (reflector.go's defaults). */
export const CLIENT_GO_REFLECTOR_BACKOFF: BackoffOptions = {
  initialMs: 800,
  factor: 2,
  jitter: 1,
  capMs: 30_000,
  resetMs: 120_000,
};

/** The longest a client-go informer can wait before its next try after a long outage: cap × (1 + jitter), 60 s. */
export const CLIENT_GO_MAX_RETRY_WAIT_MS = CLIENT_GO_REFLECTOR_BACKOFF.capMs * (1 + CLIENT_GO_REFLECTOR_BACKOFF.jitter);

/**
 * The kubelet's status manager (k8s.io/kubernetes v1.37.2 pkg/kubelet/status/status_manager.go,
 * `syncPeriod`): a pod's status is sent when it changes and, what could not be sent, again on this
 * tick. So once the apiserver is back after an outage, a readiness that changed meanwhile reaches it
 * up to 10 s later (sooner if the pod changes again).
 */
export const KUBELET_STATUS_SYNC_PERIOD_MS = 10_000;

/** A retry schedule: the wait before each next try (ms). */
export interface RetryBackoff {
  next(): number;
}

/**
 * `wait.Backoff` with `DelayWithReset`, as the reflector builds it: steps = ceil(cap / initial), the
 * base doubles each step until the cap (then stays), each wait jittered, everything reset once
 * `resetMs` has passed since the last reset (not since the last success: client-go's
 * `backoffManager` keeps its `lastStart` until it resets).
 */
export class ReflectorBackoff implements RetryBackoff {
  readonly #o: BackoffOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  #base: number;
  #steps: number;
  #lastReset: number;

  constructor(o: BackoffOptions = CLIENT_GO_REFLECTOR_BACKOFF, now: () => number = Date.now, random: () => number = Math.random) {
    this.#o = o;
    this.#now = now;
    this.#random = random;
    this.#base = o.initialMs;
    this.#steps = Math.ceil(o.capMs / o.initialMs);
    this.#lastReset = now();
  }

  next(): number {
    const o = this.#o;
    if (this.#now() - this.#lastReset > o.resetMs) {
      this.#base = o.initialMs;
      this.#steps = Math.ceil(o.capMs / o.initialMs);
      this.#lastReset = this.#now();
    }
    const jittered = (d: number) => (o.jitter > 0 ? d + this.#random() * o.jitter * d : d);
    if (this.#steps < 1) return jittered(this.#base);
    this.#steps--;
    const wait = jittered(this.#base);
    let next = o.factor !== 0 ? this.#base * o.factor : this.#base;
    if (o.capMs > 0 && next > o.capMs) {
      next = o.capMs;
      this.#steps = 0;
    }
    this.#base = next;
    return wait;
  }
}
