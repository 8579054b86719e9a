/**
 * After a dependency comes back: does any pod still hold a connection to it that died in the
 * outage (a pooled connection the pool never noticed was closed, a client that never reconnects)?
 * A request that later draws that connection fails although the dependency is up.
 *
 * The sweep: from the moment the dependency is back, each pod is asked the app's check (a request
 * that needs the dependency and changes nothing: AppConnection.dependencyCheck) at the pod's
 * address every 200 ms until it answers healthy (the pod reaches the dependency again); at once a
 * burst of concurrent ones (more than the pod's pool holds) draws every pooled connection.
 * `staleConnectionGate` (pure) judges the sweep with the load's failures on each pod after it had
 * recovered.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Gate } from '../reports/gates.ts';
import type { JoinedFailure } from '../lib/evidence/join.ts';
import type { DependencyCheck } from './app-profile.ts';

export interface PodSweep {
  pod: string;
  /** When the pod first answered its check healthy after the dependency came back (epoch ms), null if never before the deadline. */
  recoveredAt: number | null;
  /** When the burst had every answer (epoch ms), null without a burst. */
  sweptAt: number | null;
  answers: number;
  /** Unhealthy answers of the burst, as `HTTP 503` or the error. */
  failures: string[];
}

/** Sweeps one pod: asks its check every 200 ms until it answers healthy (or `deadline`), then `check.burst` times at once. */
export async function sweepPod(
  pod: { name: string; baseUrl: string },
  check: DependencyCheck,
  deadline: number,
  signal: AbortSignal,
): Promise<PodSweep> {
  const out: PodSweep = { pod: pod.name, recoveredAt: null, sweptAt: null, answers: 0, failures: [] };
  const ask = () => check.ask(pod.baseUrl).catch((err: Error) => `the check threw: ${err.message}`);
  while (Date.now() < deadline && !signal.aborted) {
    if ((await ask()) === null) {
      out.recoveredAt = Date.now();
      break;
    }
    await sleep(200, undefined, { signal }).catch(() => {});
  }
  if (out.recoveredAt === null) return out;
  const burst = await Promise.all(Array.from({ length: check.burst }, ask));
  out.sweptAt = Date.now();
  out.answers = burst.length;
  out.failures = burst.filter((a): a is string => a !== null);
  return out;
}

/**
 * FAIL when a pod's burst drew a connection that failed after the pod had already reached the
 * dependency again, when a request of the load that needs it failed with an answer from a pod after
 * that pod had recovered, or when a pod never recovered before the deadline; INCONCLUSIVE without a
 * sweep of any pod; else PASS, with how long after the dependency's return each pod was swept.
 */
export function staleConnectionGate(
  dependency: string,
  w: { to: number; steps: string[] },
  sweeps: PodSweep[],
  failures: JoinedFailure[],
  deadlineMs: number,
): Gate {
  const name = `${dependency}: no stale connection afterwards`;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  if (sweeps.length === 0)
    return { name, verdict: 'INCONCLUSIVE', evidence: `no pod could be swept after ${dependency} came back` };
  const notBack = sweeps.filter((x) => x.recoveredAt === null);
  const stale = sweeps.filter((x) => x.failures.length);
  // The load: a request that needs the dependency, answered with a 5xx by a pod after that pod had recovered.
  const recovered = new Map(sweeps.flatMap((x) => (x.recoveredAt === null ? [] : [[x.pod, x.recoveredAt] as const])));
  const late = failures.filter(
    (f) => f.pod && f.status >= 500 && w.steps.includes(f.step) && recovered.has(f.pod) && f.at > recovered.get(f.pod)!,
  );
  const detectMs = Math.max(...sweeps.map((x) => (x.sweptAt ?? w.to) - w.to));
  const observed = {
    pods: sweeps.length,
    stale_pods: stale.length,
    not_recovered: notBack.length,
    late_failures: late.length,
    detect_ms: detectMs,
  };
  if (stale.length) {
    const x = stale[0];
    return {
      name,
      verdict: 'FAIL',
      observed,
      evidence:
        `a stale pooled connection: pod ${x.pod} reached ${dependency} again ${s(x.recoveredAt! - w.to)} after it came back, then ` +
        `${x.failures.length} of ${x.answers} concurrent requests failed (${[...new Set(x.failures)].join(', ')}): it kept connections that died in the outage`,
    };
  }
  if (late.length) {
    const f = late[0];
    return {
      name,
      verdict: 'FAIL',
      observed,
      evidence:
        `a stale connection: ${late.length} requests that need ${dependency} failed on pods that had already reached it again ` +
        `(first: ${f.step} HTTP ${f.status} from pod ${f.pod}, ${s(f.at - recovered.get(f.pod!)!)} after it had recovered)`,
    };
  }
  if (notBack.length)
    return {
      name,
      verdict: 'FAIL',
      observed,
      evidence: `pods ${notBack.map((x) => x.pod).join(', ')} did not reach ${dependency} again within ${s(deadlineMs)} after it came back`,
    };
  return {
    name,
    verdict: 'PASS',
    observed,
    evidence:
      `every pod reached ${dependency} again and a burst drawing every pooled connection found none dead: ` +
      sweeps.map((x) => `${x.pod} ${x.answers} of ${x.answers} healthy ${s(x.sweptAt! - w.to)} after the return`).join(', '),
  };
}
