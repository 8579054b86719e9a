import { expect } from 'vitest';
import type { EmbeddedCluster } from '../../cluster/embedded/embedded-cluster.ts';
import { k8s } from '../../lib/kube/client.ts';
import type { AppProfile } from '../app-profile.ts';
import { harnessConfigSchema } from '../config.ts';
import { EXPERIMENTS } from '../index.ts';
import { runExperiments, type CheckResult } from '../runner.ts';
import { removeWorkload } from './fresh-workload.ts';

const log = (m: string) => process.stderr.write(`  ${m}\n`);

/** rollout-under-load of `app` (v1 → v2) with its load from two agents (--agents 2), on a namespace without the previous test's pods. */
export async function rolloutFromAgents(cluster: EmbeddedCluster, app: AppProfile, faults: string[] = []): Promise<CheckResult> {
  const config = harnessConfigSchema.parse({ experiments: { rate: 150, warmupMs: 3000, settleMs: 5000 } });
  await removeWorkload(cluster, app.workload);
  const [r] = await runExperiments(cluster, [EXPERIMENTS['rollout-under-load']], {
    app,
    config,
    signal: new AbortController().signal,
    say: log,
    agents: 2,
    options: { rate: config.experiments.rate, from: 'v1', to: 'v2', faults: faults.map((f) => app.faults[f]) },
  });
  log(
    `rollout-under-load${faults.length ? ` [${faults}]` : ''} from 2 agents: ${r.verdict}${r.error ? ` ${r.error}` : ''}\n${r.gates.map((g) => `  ${g.verdict} ${g.name}: ${g.evidence}`).join('\n')}`,
  );
  return r;
}

/** No Job, pod or Secret of any load agent is left in the agents' namespace. */
export async function noAgentsLeft(cluster: EmbeddedCluster): Promise<void> {
  const batch = cluster.kubeConfig.makeApiClient(k8s.BatchV1Api);
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const labelSelector = 'app.kubernetes.io/name=verdict-load-agent,app.kubernetes.io/managed-by=verdict';
  expect((await batch.listNamespacedJob({ namespace: 'default', labelSelector })).items).toEqual([]);
  expect((await core.listNamespacedPod({ namespace: 'default', labelSelector })).items).toEqual([]);
  expect((await core.listNamespacedSecret({ namespace: 'default', labelSelector })).items).toEqual([]);
}
