/**
 * The harness probes every pod's *declared* liveness endpoint itself, as the kubelet would (at the
 * pod's address, with the probe's own handler, port, path, headers and timeout), every second while
 * a dependency is away. A liveness probe that fails even once during the outage depends on the
 * dependency: the kubelet restarts the container after `failureThreshold` failures in a row, every
 * replica at once, however the probe's timings are tuned. This sees it at the first failure, whether
 * or not the outage lasted long enough for a restart.
 *
 * `LivenessWatch` collects the samples; `livenessGate` (a pure function) judges them.
 */
import type { BlockList } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { k8s } from '../lib/kube/client.ts';
import { runProbe, type ProbeTarget } from '../cluster/embedded/agent/probe.ts';
import type { Gate } from '../reports/gates.ts';
import { inNetworks, networksList } from './pod-address.ts';

export interface LivenessSample {
  /** Epoch ms the probe was sent. */
  at: number;
  pod: string;
  container: string;
  ok: boolean;
  message: string;
  /** How long it took, ms. */
  ms: number;
}

/** A container whose liveness the harness cannot run as the kubelet does (exec, HTTPS, an address it must not reach). */
export interface UnprobedContainer {
  pod: string;
  container: string;
  why: string;
}

export interface LivenessRecord {
  samples: LivenessSample[];
  unprobed: UnprobedContainer[];
  /** Containers seen that declare a liveness probe (`pod/container`). */
  declared: string[];
  /** The declared handler per container name, in words (`GET :http/health/live, timeout 5 s`). */
  handlers: Record<string, string>;
  everyMs: number;
  /** Probe turns skipped for a container inside its initialDelaySeconds without a startup probe that passed. */
  delayed: number;
}

export interface LivenessWatchOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  selector: string;
  /** CIDRs of pod addresses this machine may send to (the target's podReach networks). */
  networks: string[];
  everyMs?: number;
}

/** Probes each pod's declared liveness every `everyMs` from `start()` until `stop()`. */
export class LivenessWatch {
  readonly #o: Required<LivenessWatchOptions>;
  readonly #allowed: BlockList;
  readonly #inFlight = new Set<string>();
  readonly #record: LivenessRecord;
  readonly #abort = new AbortController();
  readonly #failureWaiters = new Set<(s: LivenessSample) => void>();
  #loop: Promise<void> | undefined;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(o: LivenessWatchOptions) {
    this.#o = { everyMs: 1000, ...o };
    this.#allowed = networksList(o.networks);
    this.#record = { samples: [], unprobed: [], declared: [], handlers: {}, everyMs: this.#o.everyMs, delayed: 0 };
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Resolves with the next failed probe sent at or after `since` (or never, until the signal aborts). */
  nextFailure(since: number, signal: AbortSignal): Promise<LivenessSample> {
    const seen = this.#record.samples.find((s) => !s.ok && s.at >= since);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#failureWaiters.delete(waiter);
        reject(signal.reason);
      };
      const waiter = (s: LivenessSample) => {
        if (s.at < since) return;
        this.#failureWaiters.delete(waiter);
        signal.removeEventListener('abort', onAbort);
        resolve(s);
      };
      this.#failureWaiters.add(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops probing, waits for the probes in flight and returns what was seen. */
  async stop(): Promise<LivenessRecord> {
    this.#abort.abort();
    await this.#loop?.catch(() => {});
    await Promise.allSettled([...this.#pending]);
    return this.#record;
  }

  async #run(): Promise<void> {
    const core = this.#o.kubeConfig.makeApiClient(k8s.CoreV1Api);
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const tick = Date.now();
      try {
        const pods = await core.listNamespacedPod({ namespace: this.#o.namespace, labelSelector: this.#o.selector });
        for (const p of pods.items) this.#probePod(p);
      } catch {
        // The API may be busy: the coverage check in livenessGate says when too few seconds were probed.
      }
      await sleep(Math.max(0, this.#o.everyMs - (Date.now() - tick)), undefined, { signal }).catch(() => {});
    }
  }

  #probePod(p: k8s.V1Pod): void {
    const pod = p.metadata?.name ?? '';
    const ip = p.status?.podIP;
    if (!pod || !ip || p.metadata?.deletionTimestamp || p.status?.phase !== 'Running') return;
    for (const c of p.spec?.containers ?? []) {
      const probe = c.livenessProbe;
      if (!probe) continue;
      const key = `${pod}/${c.name}`;
      if (!this.#record.declared.includes(key)) this.#record.declared.push(key);
      this.#record.handlers[c.name] ??= describeHandler(probe);
      const turn = probeTurn(
        c,
        p.status?.containerStatuses?.find((s) => s.name === c.name),
        Date.now(),
      );
      if (turn === 'delayed') this.#record.delayed++;
      if (turn !== 'probe') continue;
      const why = unprobeable(probe, ip, this.#allowed);
      if (why) {
        if (!this.#record.unprobed.some((u) => u.pod === pod && u.container === c.name))
          this.#record.unprobed.push({ pod, container: c.name, why });
        continue;
      }
      // Like the kubelet: one probe of a container at a time.
      if (this.#inFlight.has(key)) continue;
      this.#inFlight.add(key);
      const ports = new Map((c.ports ?? []).flatMap((x) => (x.name ? [[x.name, x.containerPort] as const] : [])));
      const target: ProbeTarget = {
        ip,
        ports,
        wrap: () => {
          throw new Error('exec probes cannot run from the harness');
        },
      };
      const at = Date.now();
      const done = runProbe(probe, target).then((r) => {
        this.#inFlight.delete(key);
        this.#pending.delete(done);
        const s: LivenessSample = { at, pod, container: c.name, ok: r.ok, message: r.message, ms: Date.now() - at };
        this.#record.samples.push(s);
        if (!s.ok) for (const w of [...this.#failureWaiters]) w(s);
      });
      this.#pending.add(done);
    }
  }
}

/**
 * Whether a container's liveness is asked now: once it runs and its startup probe passed, at once,
 * initialDelaySeconds or not (the delay postpones the kubelet's first probe, it does not change what
 * the endpoint answers while the dependency is away); without a startup probe the delay is all that
 * says the app is up, so it is honoured (`delayed`), as the kubelet does.
 */
export function probeTurn(
  c: Pick<k8s.V1Container, 'livenessProbe' | 'startupProbe'>,
  status: Pick<k8s.V1ContainerStatus, 'started' | 'state'> | undefined,
  now: number,
): 'probe' | 'delayed' | 'not-running' {
  const startedAt = status?.state?.running?.startedAt;
  if (!startedAt || status?.started === false) return 'not-running';
  const inDelay = now - new Date(startedAt).getTime() < (c.livenessProbe?.initialDelaySeconds ?? 0) * 1000;
  return inDelay && !(c.startupProbe && status?.started === true) ? 'delayed' : 'probe';
}

/** Why the harness cannot run this probe as the kubelet would, or null. */
function unprobeable(probe: k8s.V1Probe, ip: string, allowed: BlockList): string | null {
  if (probe.exec) return 'an exec probe runs inside the container: the harness cannot run it from outside';
  if (probe.grpc) return 'a gRPC probe: the harness runs httpGet and tcpSocket probes';
  if (probe.httpGet && (probe.httpGet.scheme ?? 'HTTP') !== 'HTTP') return 'an HTTPS probe: the harness runs plain HTTP probes';
  if (!probe.httpGet && !probe.tcpSocket) return 'a probe without a handler';
  const host = probe.httpGet?.host ?? probe.tcpSocket?.host ?? ip;
  if (!inNetworks(allowed, host)) return `its address ${host} is not in the pod networks this machine may reach`;
  return null;
}

/** The declared handler in words, for the evidence. */
export function describeHandler(probe: k8s.V1Probe): string {
  const h = probe.httpGet
    ? `GET :${probe.httpGet.port}${probe.httpGet.path ?? '/'}`
    : probe.tcpSocket
      ? `TCP :${probe.tcpSocket.port}`
      : probe.exec
        ? `exec ${(probe.exec.command ?? []).join(' ')}`
        : 'no handler';
  return `${h} (timeout ${probe.timeoutSeconds ?? 1} s)`;
}

/** The cause a liveness failure during a dependency's outage names. */
export const livenessCause = (dependency: string) => `liveness depends on ${dependency}`;

/**
 * Judges one dependency's outage: FAIL at a single failed liveness probe sent between `from` and
 * `until` (the outage and its recovery allowance), with the cause "liveness depends on <dependency>";
 * INCONCLUSIVE when the harness could not probe (an exec or HTTPS probe, too few seconds probed);
 * PASS only when every declared liveness answered throughout.
 */
export function livenessGate(dependency: string, w: { from: number; to: number; until: number }, r: LivenessRecord): Gate {
  const name = `${dependency}: liveness independent of it`;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const during = r.samples.filter((x) => x.at >= w.from && x.at <= w.until);
  const failed = during.filter((x) => !x.ok);
  const before = r.samples.filter((x) => x.at < w.from);
  const beforeFailed = before.filter((x) => !x.ok).length;
  const pods = new Set(during.map((x) => x.pod));
  const handlers = Object.entries(r.handlers)
    .map(([c, h]) => `${c}: ${h}`)
    .join('; ');
  if (failed.length) {
    const first = failed[0];
    const failedPods = new Set(failed.map((x) => x.pod));
    return {
      name,
      verdict: 'FAIL',
      observed: {
        cause: livenessCause(dependency),
        failed_probes: failed.length,
        probes: during.length,
        pods_failed: failedPods.size,
        first_failure_after_ms: first.at - w.from,
        failed_before_outage: beforeFailed,
      },
      evidence:
        `${livenessCause(dependency)}: pod ${first.pod}'s declared liveness (${r.handlers[first.container] ?? first.container}) failed ` +
        `${s(first.at - w.from)} after ${dependency} went away (${first.message}); ${failed.length} of ${during.length} probes failed on ` +
        `${failedPods.size} of ${pods.size} pods. The kubelet restarts a container after failureThreshold failures in a row: ` +
        `a ${dependency} outage longer than that restarts every replica at once` +
        (beforeFailed ? ` (${beforeFailed} of ${before.length} probes had failed before the outage too)` : ''),
    };
  }
  if (r.declared.length === 0)
    return {
      name,
      verdict: 'PASS',
      observed: { probes: 0 },
      evidence: 'no container declares a liveness probe: the kubelet has nothing to restart it for',
    };
  if (r.unprobed.length) {
    const u = r.unprobed[0];
    return {
      name,
      verdict: 'INCONCLUSIVE',
      observed: { unprobed: r.unprobed.length, probes: during.length },
      evidence: `the harness cannot run container ${u.container}'s liveness as the kubelet does (${u.why}), so it cannot show whether it depends on ${dependency}`,
    };
  }
  // Every second of the window must have seen a probe of every pod (a busy machine may miss a few).
  const seconds = Math.max(1, Math.floor((w.until - w.from) / r.everyMs));
  const covered = new Set(during.map((x) => Math.floor((x.at - w.from) / r.everyMs))).size;
  if (during.length === 0 || covered < 0.8 * seconds)
    return {
      name,
      verdict: 'INCONCLUSIVE',
      observed: { probes: during.length, seconds_probed: covered, seconds },
      evidence:
        `the harness probed liveness in only ${covered} of ${seconds} periods of ${s(r.everyMs)} during the ${dependency} outage: too few to show it never failed` +
        (r.delayed
          ? ` (${r.delayed} turns skipped for containers inside their initialDelaySeconds without a startup probe)`
          : ''),
    };
  return {
    name,
    verdict: 'PASS',
    observed: { probes: during.length, pods: pods.size, seconds_probed: covered, seconds, failed_before_outage: beforeFailed },
    evidence:
      `every pod's declared liveness (${handlers}) answered throughout the ${dependency} outage and its recovery allowance: ` +
      `${during.length} probes of ${pods.size} pods in ${covered} of ${seconds} periods of ${s(r.everyMs)}, none failed`,
  };
}
