import { setTimeout as sleep } from 'node:timers/promises';
import type { k8s } from '../lib/kube/client.ts';
import { deployRelease, type ReleaseSpec } from '../lib/kube/deploy.ts';
import { PodTimeline, type PodEvent } from '../lib/kube/pod-timeline.ts';
import { startLoad, type LoadResult, type Progress } from '../lib/load/index.ts';
import { licenseFlow } from '../lib/load/scenarios/license-flow.ts';

export interface RolloutUnderLoadOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  /** Pods of the workload (label selector), watched for the timeline. */
  selector: string;
  from: ReleaseSpec;
  to: ReleaseSpec;
  /** Base URL of the Service (e.g. the NodePort on 127.0.0.1). */
  url: string;
  token: string;
  licenseKey: string;
  /** License flows per second (each flow is 3 requests: acquire, heartbeat, release). */
  rate: number;
  /** Load before the rollout starts and after it ends. */
  warmupMs?: number;
  settleMs?: number;
  rolloutTimeoutMs?: number;
  onProgress?: (message: string) => void;
  onLoadProgress?: (p: Progress) => void;
  /** Aborting it (Ctrl-C) stops the load and the rollout wait at once. */
  signal?: AbortSignal;
  /**
   * The pod a client connection (by its local port) was forwarded to, from the Service proxy's
   * records: puts failures that got no response (resets, refusals) on a pod too.
   */
  attribute?: (clientPort: number) => string | undefined;
}

export interface FailedRequest {
  at: string;
  step: string;
  status: number;
  error: string | null;
  /** The pod that served (or dropped) it: from X-Served-By, else from the proxy's connection record. */
  servedBy: string | null;
  attributedBy: 'response-header' | 'proxy-connection' | null;
  appVersion: string | null;
  /** What happened to the serving pod just before (from the timeline). */
  podHistory: PodEvent[];
}

export interface RolloutUnderLoadResult {
  load: LoadResult;
  rollout: { ok: boolean; error?: string; startedAt: number; endedAt: number };
  timeline: PodEvent[];
  minReady: number;
  /** How many times the timeline polled the pods: 0 means the capacity figures are no evidence. */
  timelineSamples: number;
  maxActive: number;
  /** Judged (not aborted) requests answered by each app version. */
  versions: Record<string, number>;
  failures: FailedRequest[];
}

/**
 * The experiment: deploy `from`, put the license flow under open-model load through the Service,
 * roll out `to` with the real Deployment controller, keep the load on until the rollout is done
 * plus `settleMs`, and join every failed request with what its pod was doing.
 */
export async function rolloutUnderLoad(o: RolloutUnderLoadOptions): Promise<RolloutUnderLoadResult> {
  const say = o.onProgress ?? (() => {});
  say(`deploying ${o.from.image} (the release before)`);
  await deployRelease(o.kubeConfig, o.from, { timeoutMs: o.rolloutTimeoutMs ?? 300_000, signal: o.signal });
  const timeline = new PodTimeline(o.kubeConfig, o.namespace, o.selector);
  await timeline.start();
  const maxMs = (o.warmupMs ?? 5000) + (o.rolloutTimeoutMs ?? 300_000) + (o.settleMs ?? 5000);
  say(`starting load: ${o.rate} license flows/s against ${o.url}`);
  const run = await startLoad({
    url: o.url,
    executor: { executor: 'constant-arrival-rate', rate: o.rate, duration: `${Math.ceil(maxMs / 1000)}s`, preAllocatedVUs: Math.max(10, o.rate * 2), maxVUs: Math.max(50, o.rate * 10) },
    scenario: licenseFlow({ token: o.token, licenseKey: o.licenseKey }),
    timeout: '10s',
    onProgress: o.onLoadProgress,
    signal: o.signal,
  });
  let rollout: RolloutUnderLoadResult['rollout'];
  try {
    await sleep(o.warmupMs ?? 5000, undefined, { signal: o.signal });
    const startedAt = Date.now();
    say(`rolling out ${o.to.image}`);
    try {
      await deployRelease(o.kubeConfig, o.to, { timeoutMs: o.rolloutTimeoutMs ?? 300_000, onProgress: (m) => say(m), signal: o.signal });
      rollout = { ok: true, startedAt, endedAt: Date.now() };
    } catch (err) {
      o.signal?.throwIfAborted();
      rollout = { ok: false, error: (err as Error).message, startedAt, endedAt: Date.now() };
    }
    say('rollout finished; keeping the load on to see the new release settle');
    await sleep(o.settleMs ?? 5000, undefined, { signal: o.signal });
  } finally {
    run.abort('experiment over');
    await timeline.stop();
  }
  const load = await run.result;

  const versions: Record<string, number> = {};
  const failures: FailedRequest[] = [];
  for (const r of load.ledger.rows()) {
    if (r.outcome === 'succeeded' && r.appVersion) versions[r.appVersion] = (versions[r.appVersion] ?? 0) + 1;
    if (r.outcome === 'failed' && r.error !== 'aborted' && failures.length < 200) {
      const at = load.ledger.epochMs(r.scheduledAt);
      const viaProxy = !r.servedBy && r.localPort ? o.attribute?.(r.localPort) : undefined;
      const pod = r.servedBy ?? viaProxy ?? null;
      failures.push({ at: new Date(at).toISOString(), step: r.name, status: r.status, error: r.error ?? r.errorCode,
        servedBy: pod, attributedBy: r.servedBy ? 'response-header' : viaProxy ? 'proxy-connection' : null, appVersion: r.appVersion,
        podHistory: pod ? timeline.before(pod, at) : [] });
    }
  }
  return { load, rollout, timeline: timeline.events, minReady: timeline.minReady, timelineSamples: timeline.samples, maxActive: timeline.maxActive, versions, failures };
}
