import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi, licenseApiToken } from '../apps/license-api/profile.ts';
import { EMBEDDED_PLATFORM, upEmbedded, type EmbeddedCluster } from '../cluster/embedded/embedded-cluster.ts';
import { k8s } from '../lib/kube/client.ts';
import { readRunRecord } from '../reports/run-directory.ts';
import { runCli } from '../cli/testing/run-cli.ts';
import { harnessConfigSchema } from './config.ts';
import type { ControlPlaneOutageData } from './control-plane-outage.ts';
import type { AnyExperiment } from './experiment.ts';
import { EXPERIMENTS } from './index.ts';
import type { NodePoolUpgradeData } from './node-pool-upgrade.ts';
import { observeExperiment, type ObserveData } from './observe.ts';
import type { CheckResult } from './runner.ts';
import { runOnCluster } from './testing/run-on-cluster.ts';
import { LOADED_SLOT } from '../cluster/embedded/testing/lanes.ts';

// The pre-upgrade rehearsals on the embedded cluster (issue 21): each new experiment PASSes the
// shipped release and FAILs a broken release of the same code for the right cause, and observe
// mode (`verdict rehearse -- <command>`) PASSes a command that changes nothing and FAILs one that
// force-deletes pods. The control plane is away 30 s here (120 s by default): the points shown —
// the data plane serves on, the endpoints freeze, the harness's watches re-list — are the same
// after 30 s, and the rest of make test needs the time.
const STATE = '/var/lib/verdict/rehearse-a-rehearsals';
const config = harnessConfigSchema.parse({
  experiments: { rate: 200, warmupMs: 3000, settleMs: 5000, controlPlaneOutageMs: 30_000 },
});

let cluster: EmbeddedCluster;
const dirs: string[] = [];
beforeAll(async () => {
  cluster = await upEmbedded({ name: 'verdict', stateDir: STATE, nodes: 3, slot: LOADED_SLOT });
}, 600_000);
afterAll(async () => {
  await cluster?.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}, 120_000);

const run = (experiment: AnyExperiment, faults: string[] = []): Promise<CheckResult> =>
  runOnCluster({
    target: cluster,
    experiment,
    app: licenseApi,
    config,
    faults,
    command: 'rehearse',
    serviceUrl: cluster.serviceUrl(30080),
  });
const gate = (r: CheckResult, name: string) => r.gates.find((g) => g.name === name);
const verdicts = (r: CheckResult) => r.gates.map((g) => [g.name, g.verdict]);

describe('control-plane-outage', () => {
  it('the shipped release PASSes: the data plane serves through 30 s without a control plane; the harness re-lists and says what it missed', async () => {
    const r = await run(EXPERIMENTS['control-plane-outage']);
    expect(r.error).toBeNull();
    expect(verdicts(r)).toEqual([
      ['control plane away', 'PASS'],
      ['no failed request', 'PASS'],
      ['load as planned', 'PASS'],
      ['workload whole after the outage', 'PASS'],
      ['the harness saw through the outage', 'PASS'],
    ]);
    const d = r.evidence!.data as ControlPlaneOutageData;
    expect(d.to - d.from).toBeGreaterThanOrEqual(30_000);
    // Requests were served while the API was away.
    const during = r.evidence!.loads[0].joined.series.filter((s) => s.t >= d.from && s.t + 1000 <= d.to);
    expect(during.reduce((n, s) => n + s.requests, 0)).toBeGreaterThan(20 * 150);
    // The timeline marked the gap: each watch lost the API during the outage and resumed after
    // that. A watch may re-list before the harness's own probe (every second) saw the API back, so
    // its resumption is ordered after its loss, not after d.to.
    const watch = r.evidence!.timeline.events.filter((e) => e.kind === 'watch');
    const gaps = ['pods', 'endpointslices', 'nodes', 'events'].map((w) => {
      const lost = watch.find((e) => e.object === `watch/${w}` && e.change === 'lost' && e.at >= d.from && e.at <= d.to);
      const resumed = lost && watch.find((e) => e.object === `watch/${w}` && e.change === 'resumed' && e.at > lost.at);
      return { watch: w, lost: !!lost, resumed: !!resumed };
    });
    expect(gaps).toEqual(gaps.map((g) => ({ watch: g.watch, lost: true, resumed: true })));
    process.stderr.write(
      `control-plane-outage: API away ${((d.to - d.from) / 1000).toFixed(1)} s (asked ${d.requestedMs / 1000} s)\n`,
    );
  }, 400_000);

  it('a release whose pods restart themselves FAILs: with the endpoints frozen, the Service sends requests to a process that is gone (endpoints-frozen)', async () => {
    const r = await run(EXPERIMENTS['control-plane-outage'], ['self-restarts']);
    expect(r.error).toBeNull();
    expect(r.verdict).toBe('FAIL');
    expect(gate(r, 'no failed request')?.verdict).toBe('FAIL');
    const d = r.evidence!.data as ControlPlaneOutageData;
    const failures = r.evidence!.loads[0].joined.failures;
    const frozen = failures.filter((f) => f.cause === 'endpoints-frozen');
    expect(frozen.length).toBeGreaterThan(0);
    // Every failure inside the outage (and before the data plane caught up) is put on it, but a timeout (its own rule).
    const inside = failures.filter((f) => f.at >= d.from && f.at <= d.to + d.staleForMs);
    expect(inside.filter((f) => f.cause !== 'endpoints-frozen' && f.cause !== 'timeout')).toEqual([]);
    expect(frozen.length / failures.length).toBeGreaterThan(0.9);
    expect(frozen[0].reason).toMatch(/the endpoints could not change, so the Service still routed to pod license-api-/);
  }, 400_000);
});

describe('node-pool-upgrade', () => {
  it('the shipped release PASSes: each node replaced by a surge node, drained with the PDB held, every pod on a new node', async () => {
    const r = await run(EXPERIMENTS['node-pool-upgrade']);
    expect(r.error).toBeNull();
    expect(verdicts(r)).toEqual([
      ['nodes upgraded', 'PASS'],
      ['no failed request', 'PASS'],
      ['load as planned', 'PASS'],
      ['capacity held', 'PASS'],
      ['every pod on a new node', 'PASS'],
      ['node pool whole', 'PASS'],
    ]);
    const d = r.evidence!.data as NodePoolUpgradeData;
    expect(d.upgrades.length).toBe(3);
    expect(d.nodesAfter.length).toBe(3);
    expect(d.nodesAfter.some((n) => d.nodesBefore.includes(n))).toBe(false);
    const labels = (await cluster.kubeConfig.makeApiClient(k8s.CoreV1Api).listNode()).items.map(
      (n) => n.metadata?.labels?.['verdict.dev/node-version'],
    );
    expect(new Set(labels)).toEqual(new Set([d.version]));
    for (const u of d.upgrades)
      process.stderr.write(`node-pool-upgrade: ${u.old} drained in ${((u.drainedAt - u.cordonedAt) / 1000).toFixed(1)} s\n`);
  }, 400_000);

  it('a release without a disruption budget (2 pods on one node) FAILs on capacity: the drain took both at once', async () => {
    const r = await run(EXPERIMENTS['node-pool-upgrade'], ['no-disruption-budget']);
    expect(r.error).toBeNull();
    expect(r.verdict).toBe('FAIL');
    const g = gate(r, 'capacity held')!;
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(
      /at least 3 needed: one pod down at a time: the release declares no disruption budget \(minAvailable 0\)/,
    );
    expect(Number(g.observed?.minReady)).toBeLessThanOrEqual(2);
  }, 500_000);
});

describe('verdict rehearse -- <command> (observe mode)', () => {
  it('a command that changes nothing PASSes; its exit code and output are in the report', async () => {
    const r = await run(
      observeExperiment({
        argv: ['sh', '-c', 'echo checking; kubectl get nodes -o name'],
        allowFailedRate: 0,
        timeoutMs: 60_000,
      }),
    );
    expect(r.error).toBeNull();
    expect(verdicts(r)).toEqual([
      ['the operation succeeded', 'PASS'],
      ['no failed request', 'PASS'],
      ['load as planned', 'PASS'],
      ['workload settled', 'PASS'],
      ['disruption budget held', 'PASS'],
    ]);
    const d = r.evidence!.data as ObserveData;
    expect(d.exitCode).toBe(0);
    expect(d.output).toContain('checking');
    expect(gate(r, 'the operation succeeded')?.evidence).toMatch(/exit 0 .*node\/verdict-node-/s);
  }, 300_000);

  it('a command that force-deletes pods FAILs, each failure with its cause', async () => {
    // Each pod in turn, 5 s apart: whether a force-deleted pod fails a request is a matter of timing
    // (one in flight on it, a new connection while its endpoint is still routed; with pooled
    // keep-alive connections, one kill failed 8 requests in one run and none in another on a busy
    // machine), three kills make a run without any failure unlikely.
    const kill =
      'for p in $(kubectl -n coditect get pods -l app=license-api -o name); do kubectl -n coditect delete "$p" --grace-period=0 --force; sleep 5; done';
    const r = await run(observeExperiment({ argv: ['sh', '-c', kill], allowFailedRate: 0, timeoutMs: 60_000 }));
    expect(r.error).toBeNull();
    expect(r.verdict).toBe('FAIL');
    expect(gate(r, 'the operation succeeded')?.verdict).toBe('PASS');
    expect(gate(r, 'no failed request')?.verdict).toBe('FAIL');
    expect(gate(r, 'workload settled')?.verdict).toBe('PASS');
    const failures = r.evidence!.loads[0].joined.failures;
    expect(failures.length).toBeGreaterThan(0);
    // Put on the deleted pod's termination, not unknown.
    const drain = failures.filter((f) => ['reset-during-drain', 'endpoint-not-yet-removed', 'terminating-pod'].includes(f.cause));
    expect(drain.length / failures.length).toBeGreaterThan(0.9);
  }, 300_000);

  it('end to end through the CLI against a context: PASS, the command streamed, exit code and output in verdict.json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rehearse-cli-'));
    dirs.push(dir);
    const context = cluster.context!;
    await writeFile(
      join(dir, 'verdict.config.yaml'),
      `allowedContexts: ["${context}"]\nexperiments: { rate: 200, warmupMs: 3000, settleMs: 5000 }\n`,
    );
    const out = join(dir, 'out');
    const r = await runCli(
      [
        'rehearse',
        '--target',
        `context:${context}`,
        '--url',
        cluster.serviceUrl(30080),
        '--out',
        out,
        '--',
        'sh',
        '-c',
        'echo rehearsed; exit 0',
      ],
      {
        cwd: dir,
        env: { KUBECONFIG: cluster.kubeconfigPath, LICENSE_TOKEN: await licenseApiToken(EMBEDDED_PLATFORM) },
      },
    );
    expect({ code: r.code, stderr: r.stderr.slice(-2000) }).toMatchObject({ code: 0 });
    expect(r.stderr).toContain('| rehearsed');
    const rec = await readRunRecord(join(out, 'latest'));
    expect(rec.command).toBe('rehearse');
    expect(rec.verdict).toBe('PASS');
    const op = rec.checks[0].gates.find((g) => g.name === 'the operation succeeded')!;
    expect(op.observed.exit_code).toBe(0);
    expect(op.evidence).toContain('rehearsed');
  }, 300_000);
});
