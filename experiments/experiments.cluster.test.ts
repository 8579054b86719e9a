import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi } from '../apps/license-api/profile.ts';
import { upEmbedded, type EmbeddedCluster } from '../cluster/embedded/embedded-cluster.ts';
import { harnessConfigSchema } from './config.ts';
import { EXPERIMENTS } from './index.ts';
import { checkRecord } from './record.ts';
import { runExperiments, type CheckResult } from './runner.ts';

// Every experiment against the embedded cluster (real control plane, node agent, pod network and
// the Service proxy with kube-proxy's 1 s endpoint lag): the shipped release must PASS, and a
// deliberately broken release of the same code must FAIL for the right cause.
const STATE = '/var/lib/verdict/test-experiments';
const config = harnessConfigSchema.parse({ experiments: { rate: 200, warmupMs: 3000, settleMs: 5000 } });

let cluster: EmbeddedCluster;
beforeAll(async () => {
  cluster = await upEmbedded({ name: 'verdict', stateDir: STATE, nodes: 3 });
}, 600_000);
afterAll(async () => { await cluster?.close(); }, 120_000);

async function run(name: string, faults: string[] = []): Promise<CheckResult> {
  const [r] = await runExperiments(cluster, [EXPERIMENTS[name]], {
    app: licenseApi, config, signal: new AbortController().signal,
    say: (m) => process.stderr.write(`  ${m}\n`),
    options: { rate: config.experiments.rate, from: 'v1', to: 'v2', faults: faults.map((f) => licenseApi.faults[f]) },
  });
  const rec = checkRecord(r);
  process.stderr.write(`${name}${faults.length ? ` [${faults}]` : ''}: ${r.verdict}${r.error ? ` ${r.error}` : ''}\n${r.gates.map((g) => `  ${g.verdict} ${g.name}: ${g.evidence}`).join('\n')}\n` +
    `${rec.failures.map((f) => `  ${f.count} × ${f.cause}: ${f.examples[0]?.reason}`).join('\n')}\n`);
  return r;
}
const gate = (r: CheckResult, name: string) => r.gates.find((g) => g.name === name);

describe('rollout-under-load', () => {
  it('the shipped release PASSes every gate: no failure, capacity held, sessions preserved, latency held', async () => {
    const r = await run('rollout-under-load');
    expect(r.error).toBeNull();
    expect(r.gates.map((g) => [g.name, g.verdict])).toEqual([
      ['rollout completed', 'PASS'], ['no failed request', 'PASS'], ['load as planned', 'PASS'], ['traffic crossed the rollout', 'PASS'],
      ['capacity held', 'PASS'], ['sessions preserved', 'PASS'], ['latency held', 'PASS']]);
    const load = r.evidence!.loads[0];
    expect(load.joined.total).toBeGreaterThan(5000);
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
});
