import { expect } from 'vitest';
import { licenseApi } from '../../../../apps/license-api/profile.ts';
import type { EmbeddedCluster } from '../../../../cluster/embedded/embedded-cluster.ts';
import { harnessConfigSchema } from '../../../../experiments/config.ts';
import { EXPERIMENTS } from '../../../../experiments/index.ts';
import { runExperiments, type CheckResult } from '../../../../experiments/runner.ts';
import { removeWorkload } from '../../../../experiments/testing/fresh-workload.ts';
import { k8s } from '../../../kube/client.ts';

const log = (m: string) => process.stderr.write(`  ${m}\n`);

/** rollout-under-load of the license API (v1 → v2) with its load from two agents (--agents 2), on a namespace without the previous test's pods. */
export async function rolloutFromAgents(cluster: EmbeddedCluster, faults: string[] = []): Promise<CheckResult> {
  const config = harnessConfigSchema.parse({ experiments: { rate: 150, warmupMs: 3000, settleMs: 5000 } });
  await removeWorkload(cluster, licenseApi.workload);
  const [r] = await runExperiments(cluster, [EXPERIMENTS['rollout-under-load']], {
    app: licenseApi,
    config,
    signal: new AbortController().signal,
    say: log,
    agents: 2,
    options: { rate: config.experiments.rate, from: 'v1', to: 'v2', faults: faults.map((f) => licenseApi.faults[f]) },
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
