import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi, licenseApiToken } from '../apps/license-api/profile.ts';
import {
  DEFAULT_ENDPOINT_LAG_MS,
  EMBEDDED_PLATFORM,
  upEmbedded,
  type EmbeddedCluster,
} from '../cluster/embedded/embedded-cluster.ts';
import type { Target } from '../cluster/target.ts';
import { openExisting } from '../cluster/existing/existing-target.ts';
import { assertTargetAllowed, harnessConfigSchema, TargetNotAllowedError } from './config.ts';
import { EXPERIMENTS } from './index.ts';
import { runExperiments, type CheckResult } from './runner.ts';
import { runOnCluster } from './testing/run-on-cluster.ts';
import { LOADED_SLOT } from '../cluster/embedded/testing/lanes.ts';
import type { Experiment } from './experiment.ts';
import { killPodsOneByOne, underLoad } from './pod-kill.ts';
import { NIGHTLY, repeats } from '../test/nightly.ts';
import { EVERY_ROLLOUT_GATE_PASSES } from './testing/run-on-cluster.ts';

// Every experiment against the embedded cluster (real control plane, node agent, pod network and
// the Service proxy with the endpoint lag measured on kube-proxy, DEFAULT_ENDPOINT_LAG_MS): the shipped release must PASS, and a
// deliberately broken release of the same code must FAIL for the right cause.
const STATE = '/var/lib/verdict/test-experiments';
const config = harnessConfigSchema.parse({ experiments: { rate: 200, warmupMs: 3000, settleMs: 5000 } });

let cluster: EmbeddedCluster;
beforeAll(async () => {
  cluster = await upEmbedded({ name: 'verdict', stateDir: STATE, nodes: 3, slot: LOADED_SLOT });
}, 600_000);
afterAll(async () => {
  await cluster?.close();
}, 120_000);

async function run(name: string, faults: string[] = [], target: Target = cluster, cfg = config): Promise<CheckResult> {
  return runOnCluster({
    target,
    experiment: EXPERIMENTS[name],
    app: licenseApi,
    config: cfg,
    faults,
    serviceUrl: cluster.serviceUrl(30080),
  });
}
const gate = (r: CheckResult, name: string) => r.gates.find((g) => g.name === name);

describe('rollout-under-load', () => {
  it('the shipped release PASSes every gate: no failure, capacity held, sessions preserved, latency held', async () => {
    const r = await run('rollout-under-load');
    expect(r.error).toBeNull();
    expect(r.gates.map((g) => [g.name, g.verdict])).toEqual(EVERY_ROLLOUT_GATE_PASSES);
    const load = r.evidence!.loads[0];
    // 200 req/s through warm-up, a rollout of a few seconds and the settle time.
    expect(load.joined.total).toBeGreaterThan(3000);
    // The watched timeline saw every v1 pod terminate and every v2 pod become ready.
    const events = r.evidence!.timeline.events;
    expect(events.filter((e) => e.kind === 'pod' && e.change === 'terminating').length).toBeGreaterThanOrEqual(3);
    expect(events.some((e) => e.kind === 'endpoint' && e.change === 'endpoint-removed')).toBe(true);
    // Connection records and response headers agree on the serving pod (attribution for resets).
    const rows = [...load.result.ledger.rows()].filter((x) => x.outcome === 'succeeded' && x.localPort).slice(-300);
    expect(rows.filter((x) => cluster.proxy.lookup(x.localPort!)?.backend?.podName === x.servedBy).length).toBe(rows.length);
  }, 400_000);

  it('a release that answers 500 while ready FAILs, every failure an application-5xx from a v2 pod', async () => {
    const r = await run('rollout-under-load', ['errors-after-start']);
    expect(r.verdict).toBe('FAIL');
    expect(gate(r, 'no failed request')?.verdict).toBe('FAIL');
    const failures = r.evidence!.loads[0].joined.failures;
    expect(failures.length).toBeGreaterThan(10);
    for (const f of failures) {
      expect(f.status).toBe(500);
      expect(f.version).toBe('v2');
      expect(f.cause).toBe('application-5xx');
      expect(f.attributedBy).toBe('response-header');
    }
  }, 400_000);

  it('a release that crash-loops FAILs as soon as that is clear, with restarts and exit code as evidence', async () => {
    const started = Date.now();
    const r = await run('rollout-under-load', ['bad-config']);
    expect(r.verdict).toBe('FAIL');
    const g = gate(r, 'rollout completed')!;
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(/restarts/);
    expect(g.evidence).toMatch(/exit 78/);
    // Well before the 300 s rollout timeout.
    expect(Date.now() - started).toBeLessThan(240_000);
  }, 400_000);

  it("a slower release that fails nothing does not PASS: its steady-state latency against the old version's", async () => {
    const r = await run('rollout-under-load', ['slow-release']);
    expect(gate(r, 'no failed request')?.verdict).toBe('PASS');
    const g = gate(r, 'latency held')!;
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(
      /in steady state: v1 in the .* before the rollout, v2 in the .* after the old pods were gone .*the new version is slower/,
    );
    expect(r.verdict).toBe('FAIL');
  }, 400_000);
});

const DRAIN = ['terminating-pod', 'endpoint-not-yet-removed', 'reset-during-drain'];

describe('rollout-under-load: a drain that keeps connections alive', () => {
  // The release going away drains without Connection: close (fault keepalive-drain). The load's idle
  // keep-alive clients (connections idle ~2 s, no stale check) keep their connections to the old pods
  // through the drain, and the old pods close them under them: their next heartbeats fail, on reused
  // connections. At the default rate (450 req/s) and data-plane lag (DEFAULT_ENDPOINT_LAG_MS).
  // make test: one run; make test-nightly: 5 of 5.
  const runs = repeats(1, 5);
  it(
    `FAILs in ${runs} of ${runs} runs at the default rate and lag, its failures on reused connections to the old pods`,
    async () => {
      const defaults = harnessConfigSchema.parse({});
      expect(defaults.experiments.rate).toBe(450);
      expect(cluster.endpointLagMs).toBe(DEFAULT_ENDPOINT_LAG_MS);
      for (let i = 0; i < runs; i++) {
        const r = await run('rollout-under-load', ['keepalive-drain'], cluster, defaults);
        expect(r.error).toBeNull();
        expect(r.verdict).toBe('FAIL');
        expect(gate(r, 'rollout completed')?.verdict).toBe('PASS');
        const g = gate(r, 'no failed request')!;
        expect(g.verdict).toBe('FAIL');
        expect(g.observed?.failed_reused_connection).toBeGreaterThan(0);
        const failures = r.evidence!.loads[0].joined.failures;
        const idle = failures.filter((f) => f.step === 'heartbeat-idle-client');
        expect(idle.length).toBeGreaterThan(0);
        for (const f of idle) expect(f.connection).toBe('reused');
        // Put on the old pods as they drained, not unknown.
        expect(failures.filter((f) => DRAIN.includes(f.cause)).length / failures.length).toBeGreaterThan(0.9);
      }
    },
    runs * 420_000,
  );
});

// Nightly: the two classic rolling-update breakages as real releases on the cluster (make test shows
// the same causes with two real license APIs on loopback: apps/license-api/load-scenario.test.ts).
if (NIGHTLY)
  describe('rollout-under-load: breakages named by cause, never unknown', () => {
    it.each([
      ['contract-break', 400],
      ['state-not-shared', 404],
    ] as const)(
      'a v2 with %s FAILs, every failure that cause, from v2, with the versions compared',
      async (fault, status) => {
        const r = await run('rollout-under-load', [fault]);
        expect(r.verdict).toBe('FAIL');
        const failures = r.evidence!.loads[0].joined.failures;
        expect(failures.length).toBeGreaterThan(10);
        const named = failures.filter((f) => f.cause === fault);
        expect(named.length / failures.length).toBeGreaterThan(0.9);
        for (const f of named) expect([f.version, f.status]).toEqual(['v2', status]);
      },
      400_000,
    );
  });

// Nightly: pod-kill's own FAIL of the naive release. make test runs the same kills of the same
// release under load as sigterm-drain's control (below), and asserts the same of their failures'
// causes there; pod-kill's PASS runs in make test (targets, below).
if (NIGHTLY)
  describe('pod-kill', () => {
    it('a release with a naive shutdown FAILs, its failures put on the terminating pods', async () => {
      const r = await run('pod-kill', ['naive-shutdown']);
      expect(r.verdict).toBe('FAIL');
      const failures = r.evidence!.loads[0].joined.failures;
      expect(failures.length).toBeGreaterThan(0);
      // Nearly every failure is explained by a terminating pod; the rest must at least be named.
      const explained = failures.filter((f) => DRAIN.includes(f.cause));
      expect(explained.length / failures.length).toBeGreaterThan(0.9);
    }, 400_000);
  });

describe('sigterm-drain', () => {
  // Nightly only: make test runs the control once, inside the sigterm-drain case below.
  if (NIGHTLY)
    it('the naive control shows drain failures in each of 5 consecutive runs at the default rate and lag', async () => {
      // The control phase of sigterm-drain alone, five times: the detector must not be lucky.
      const control: Experiment<unknown> = {
        name: 'naive-control',
        description: 'the sigterm-drain control alone',
        async setup(ctx) {
          const r = await ctx.deploy(ctx.app.release('v2', ctx.target.platform, [ctx.app.naiveShutdown!]));
          if (!r.ok) throw new Error(r.error);
        },
        act: (ctx) => underLoad(ctx, 'naive', () => killPodsOneByOne(ctx), { control: true }),
        judge: () => [],
      };
      const defaults = harnessConfigSchema.parse({});
      expect(cluster.endpointLagMs).toBe(DEFAULT_ENDPOINT_LAG_MS);
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) {
        const [r] = await runExperiments(cluster, [control], {
          app: licenseApi,
          config: defaults,
          signal: new AbortController().signal,
          options: { rate: defaults.experiments.rate, from: 'v1', to: 'v2', faults: [] },
        });
        expect(r.error).toBeNull();
        seen.push(r.evidence!.loads[0].joined.failures.filter((f) => DRAIN.includes(f.cause)).length);
      }
      process.stderr.write(`naive control, drain failures per run: ${seen.join(', ')}\n`);
      for (const n of seen) expect(n).toBeGreaterThan(0);
    }, 900_000);

  it('PASSes the shipped release: the naive control shows drain failures, put on the terminating pods; the shipped run none', async () => {
    const r = await run('sigterm-drain');
    expect(r.gates.find((g) => g.name === 'control shows drain failures')?.verdict).toBe('PASS');
    // The control is pod-kill on the naive release: nearly every failure is explained by a
    // terminating pod, the rest at least named.
    const failures = r.evidence!.loads.find((l) => l.label === 'naive')!.joined.failures;
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.filter((f) => DRAIN.includes(f.cause)).length / failures.length).toBeGreaterThan(0.9);
    expect(r.gates.find((g) => g.name === 'shipped: no failed request')?.verdict).toBe('PASS');
    expect(r.verdict).toBe('PASS');
  }, 600_000);
});

describe('node-drain', () => {
  it('the shipped release PASSes: every node drained through the Eviction API, the PDB held, every node uncordoned', async () => {
    const r = await run('node-drain');
    expect(r.gates.map((g) => [g.name, g.verdict])).toEqual([
      ['nodes drained', 'PASS'],
      ['no failed request', 'PASS'],
      ['load as planned', 'PASS'],
      ['disruption budget held', 'PASS'],
      ['nodes uncordoned', 'PASS'],
    ]);
    const actions = r.evidence!.timeline.events.filter((e) => e.kind === 'chaos').map((e) => e.change);
    expect(actions.filter((a) => a === 'cordon').length).toBe(actions.filter((a) => a === 'uncordon').length);
    expect(actions).toContain('evict');
  }, 600_000);
});

describe('targets', () => {
  it("an existing context works for real when allowed: pod-kill through the same cluster reached as someone else's", async () => {
    // As a user of someone else's cluster would: the token comes from the environment.
    process.env.LICENSE_TOKEN = await licenseApiToken(EMBEDDED_PLATFORM);
    const existing = await openExisting({
      kubeconfig: cluster.kubeconfigPath,
      context: cluster.context!,
      serviceUrl: cluster.serviceUrl(30080),
    });
    expect(existing.owned).toBe(false);
    expect(existing.images).toBeUndefined();
    const allowed = harnessConfigSchema.parse({ ...config, allowedContexts: [cluster.context!] });
    const r = await run('pod-kill', [], existing, allowed);
    expect(r.error).toBeNull();
    // The shipped release (left by node-drain) survives every pod being killed with its grace period.
    expect(r.gates.map((g) => [g.name, g.verdict])).toEqual([
      ['pods killed', 'PASS'],
      ['no failed request', 'PASS'],
      ['load as planned', 'PASS'],
    ]);
    expect(r.evidence!.timeline.events.filter((e) => e.kind === 'chaos' && e.change === 'delete')).toHaveLength(3);
    expect(r.evidence!.loads[0].joined.total).toBeGreaterThan(1000);
    delete process.env.LICENSE_TOKEN;
  }, 400_000);

  it('refuses a context that is not on the allow-list, or that a deny pattern matches, naming the fix', async () => {
    const existing = await openExisting({
      kubeconfig: cluster.kubeconfigPath,
      context: cluster.context!,
      serviceUrl: cluster.serviceUrl(30080),
    });
    await expect(
      runExperiments(existing, [EXPERIMENTS['pod-kill']], {
        app: licenseApi,
        config,
        signal: new AbortController().signal,
        options: { rate: 10, from: 'v1', to: 'v2', faults: [] },
      }),
    ).rejects.toThrow(/not in allowedContexts.*add it to allowedContexts in verdict\.config\.yaml/s);
    const denied = harnessConfigSchema.parse({ allowedContexts: ['*'], deniedContexts: [cluster.context!] });
    expect(() => assertTargetAllowed(existing, denied)).toThrow(TargetNotAllowedError);
  }, 60_000);
});

// dependency-outage and the outage rehearsals (database-maintenance, cache-failover) share their code:
// their cluster tests are in dependency-rehearsals.cluster.test.ts.
