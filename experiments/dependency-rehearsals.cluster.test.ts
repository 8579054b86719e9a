import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi } from '../apps/license-api/profile.ts';
import { upEmbedded, type EmbeddedCluster } from '../cluster/embedded/embedded-cluster.ts';
import { k8s } from '../lib/kube/client.ts';
import type { AppProfile } from './app-profile.ts';
import { harnessConfigSchema } from './config.ts';
import type { AnyExperiment } from './experiment.ts';
import { EXPERIMENTS } from './index.ts';
import { keyRotationExperiment } from './key-rotation.ts';
import type { CheckResult } from './runner.ts';
import { runOnCluster } from './testing/run-on-cluster.ts';
import { SECOND_LOADED_SLOT } from '../cluster/embedded/testing/lanes.ts';
import { NIGHTLY } from '../test/nightly.ts';

// The rehearsals of issue 21 on the embedded cluster (its own Postgres and Redis on the pod gateway,
// pods reached at their own addresses): database-maintenance, cache-failover and key-rotation each
// PASS the shipped release and FAIL a broken release of the same code for the right cause;
// dependency-outage (the same code, every dependency in turn) FAILs the eager liveness fault (nightly).
const STATE = '/var/lib/verdict/rehearse-b-dependency-rehearsals';
// Shorter than the defaults where the point is shown equally:
// - gates.dependency.outageMs (the floor, 60 s in real runs) is 0 here, so that the workload alone
//   decides the outage: the shipped liveness budget (10 s × 3 + 5 s = 35 s) + its 10 s margin = 45 s,
//   which is what each outage must last (asserted below); a broken liveness ends it at its first failure;
// - warm-up 3 s, settle 5 s and 200 req/s, as experiments.cluster.test.ts.
const config = harnessConfigSchema.parse({
  experiments: { rate: 200, warmupMs: 3000, settleMs: 5000 },
  gates: { dependency: { outageMs: 0 } },
});
// key-rotation: its own key-set refresh interval (2 s instead of the profile's 30 s) and token
// lifetime (10 s instead of 90 s); the waits are derived from them as in a real run (refresh +
// margin to roll out, last old token's expiry + margin to retire).
const quickKeys: AppProfile = {
  ...licenseApi,
  signedTokens: {
    ...licenseApi.signedTokens!,
    env: (url) => ({ ...licenseApi.signedTokens!.env(url), JWT_JWKS_REFRESH_SECONDS: '2' }),
  },
};
const keyRotation = keyRotationExperiment({ tokenLifetimeMs: 10_000 });

let cluster: EmbeddedCluster;
beforeAll(async () => {
  cluster = await upEmbedded({ name: 'verdict', stateDir: STATE, nodes: 3, slot: SECOND_LOADED_SLOT });
}, 600_000);
afterAll(async () => {
  await cluster?.close();
}, 120_000);

async function run(experiment: AnyExperiment, faults: string[] = [], app: AppProfile = licenseApi): Promise<CheckResult> {
  const r = await runOnCluster({ target: cluster, experiment, app, config, faults, serviceUrl: cluster.serviceUrl(30080) });
  expect(r.error).toBeNull();
  return r;
}
const gate = (r: CheckResult, name: string) => r.gates.find((g) => g.name === name);
const failing = (r: CheckResult) =>
  r.gates.filter((g) => g.verdict !== 'PASS').map((g) => `${g.verdict} ${g.name}: ${g.evidence}`);

describe('database-maintenance and cache-failover, shipped release', () => {
  it('database-maintenance PASSes: an outage as long as the liveness budget needs, liveness never failed, typed 503s, no stale pooled connection', async () => {
    const r = await run(EXPERIMENTS['database-maintenance']);
    expect(failing(r)).toEqual([]);
    const w = gate(r, 'postgres: outage as long as the workload needs')!;
    expect(w.evidence).toMatch(
      /planned 45 s: the longest liveness failure budget in Deployment license-api .* = 35 s\) \+ a margin of 10 s = 45 s/,
    );
    expect(w.observed?.lasted_ms).toBeGreaterThanOrEqual(44_500);
    const live = gate(r, 'postgres: liveness independent of it')!;
    expect(live.observed?.pods).toBe(3);
    expect(live.observed?.probes).toBeGreaterThan(100);
    expect(gate(r, 'postgres: typed answers')?.observed?.['503']).toBeGreaterThan(0);
    const stale = gate(r, 'postgres: no stale connection afterwards')!;
    expect(stale.observed).toMatchObject({ pods: 3, stale_pods: 0 });
    process.stderr.write(`stale pooled connections: every pod swept ${stale.observed?.detect_ms} ms after Postgres came back\n`);
  }, 400_000);

  it('cache-failover PASSes: nothing needs Redis, nothing failed, every pod reconnected', async () => {
    const r = await run(EXPERIMENTS['cache-failover']);
    expect(failing(r)).toEqual([]);
    expect(gate(r, 'redis: outage as long as the workload needs')?.observed?.lasted_ms).toBeGreaterThanOrEqual(44_500);
    expect(r.evidence!.loads[0].joined.failed).toBe(0);
    expect(gate(r, 'redis: no stale connection afterwards')?.observed).toMatchObject({ pods: 3, stale_pods: 0 });
  }, 400_000);
});

describe('a liveness that checks the dependencies with the shipped probe timings', () => {
  // FAULT_LIVENESS_CHECKS_DEPENDENCIES: /health/live asks Postgres and Redis; periodSeconds 10 ×
  // failureThreshold 3 + timeoutSeconds 5 as shipped. The harness's own probe sees the first
  // failure within seconds and ends the outage: FAIL before the kubelet restarted anything.
  for (const [name, dependency] of [
    ['database-maintenance', 'postgres'],
    ['cache-failover', 'redis'],
  ]) {
    it(`${name} FAILs with the cause "liveness depends on ${dependency}", before any restart`, async () => {
      const r = await run(EXPERIMENTS[name], ['liveness-checks-dependencies']);
      expect(r.verdict).toBe('FAIL');
      const live = gate(r, `${dependency}: liveness independent of it`)!;
      expect(live.verdict).toBe('FAIL');
      expect(live.observed?.cause).toBe(`liveness depends on ${dependency}`);
      expect(live.evidence).toMatch(
        new RegExp(`^liveness depends on ${dependency}: pod license-api-\\S+'s declared liveness \\(GET :http/health/live`),
      );
      // Seen far inside the 35 s the kubelet needs to restart it: nothing restarted, the outage was cut short.
      expect(live.observed?.first_failure_after_ms).toBeLessThan(35_000);
      expect(gate(r, `${dependency}: no container restarted`)?.verdict).toBe('PASS');
      expect(gate(r, `${dependency}: outage as long as the workload needs`)?.evidence).toMatch(/liveness failed .* s in/);
    }, 400_000);
  }

  // Nightly: dependency-outage is the same code as the two rehearsals above, run over every
  // dependency in turn; make test shows that code catch a liveness on each dependency (above).
  if (NIGHTLY)
    it('dependency-outage (the same code, each dependency in turn) FAILs the eager liveness-on-dependencies fault at postgres', async () => {
      const r = await run(EXPERIMENTS['dependency-outage'], ['liveness-on-dependencies']);
      expect(r.verdict).toBe('FAIL');
      expect(gate(r, 'postgres: liveness independent of it')?.observed?.cause).toBe('liveness depends on postgres');
      // Its liveness asks /health/ready, which Redis does not decide: that outage (its own budget 2 s × 2 + 5 s + 10 s = 19 s) passes.
      expect(gate(r, 'redis: liveness independent of it')?.verdict).toBe('PASS');
      expect(gate(r, 'redis: outage as long as the workload needs')?.evidence).toMatch(/planned 19 s/);
    }, 400_000);
});

describe('key-rotation', () => {
  it('the shipped release PASSes: both keys held during the rotation, no valid token refused, the retired key refused', async () => {
    const r = await run(keyRotation, [], quickKeys);
    expect(failing(r)).toEqual([]);
    const refused = gate(r, 'no valid token refused')!;
    const sent = refused.observed!;
    expect(Object.values(sent).filter((v) => typeof v === 'number' && v > 0).length).toBe(2);
    expect(gate(r, 'new key on every pod before the switch')?.observed).toMatchObject({ pods: 3, fetched: 3 });
    expect(gate(r, 'retired key refused')?.observed?.asked).toBe(3);
    // The release is back on its own HS256 secret afterwards.
    const apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
    const d = await apps.readNamespacedDeployment({ namespace: 'coditect', name: 'license-api' });
    expect(d.spec?.template.spec?.containers[0].env?.map((e) => e.name)).not.toContain('JWT_JWKS_URL');
  }, 400_000);

  it('a release that holds one signing key FAILs: tokens were refused during the rotation', async () => {
    const r = await run(keyRotation, ['single-signing-key'], quickKeys);
    expect(r.verdict).toBe('FAIL');
    const g = gate(r, 'no valid token refused')!;
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(/^tokens were refused during the rotation: \d+ requests got 401 .* after the switch/);
    const failures = r.evidence!.loads[0].joined.failures;
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect([f.status, f.cause]).toEqual([401, 'token-refused-during-rotation']);
  }, 400_000);
});
