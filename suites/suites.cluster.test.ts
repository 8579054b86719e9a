import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi, licenseApiToken } from '../apps/license-api/profile.ts';
import { SMOKE_HARDWARE_PREFIX } from '../apps/license-api/smoke.ts';
import { EMBEDDED_PLATFORM, upEmbedded, type EmbeddedCluster } from '../cluster/embedded/embedded-cluster.ts';
import { deployRelease, renderRelease } from '../lib/kube/deploy.ts';
import { findKind } from '../lib/kube/render.ts';
import { waitForSettled } from '../lib/kube/disrupt.ts';
import { lintManifests } from '../probes/manifest-lint.ts';
import { runProbes, type ProbesResult } from '../probes/probes.ts';
import { assertValidRunRecord } from '../reports/render/json.ts';
import type { Fault } from '../experiments/app-profile.ts';
import { runSmoke } from './smoke.ts';

// Smoke and probes against the embedded cluster (real control plane, node agent, pod network, the
// Service proxy with the endpoint lag measured on kube-proxy, 1.1 s): the shipped release PASSes both, with start
// time and endpoint propagation measured and liveness checked with each dependency stopped; a
// manifest whose drain is shorter than the measured propagation gets that finding with the
// measured value; a broken release FAILs the smoke.
const STATE = '/var/lib/verdict/test-suites';
const CLI = fileURLToPath(new URL('../cli/verdict.ts', import.meta.url));
const w = licenseApi.workload;

let cluster: EmbeddedCluster;
let url: string;
let token: string;
let probes: ProbesResult;

async function deploy(tag: string, faults: Fault[] = []): Promise<void> {
  const release = licenseApi.release(tag, EMBEDDED_PLATFORM, faults);
  await deployRelease(cluster.kubeConfig, release, { timeoutMs: 300_000 });
  await waitForSettled(cluster.kubeConfig, w.namespace, w.selector, w.deployment, 3, { timeoutMs: 180_000 });
  const deadline = Date.now() + 60_000;
  while (
    (await fetch(url + w.readyPath).then(
      (r) => r.status,
      () => 0,
    )) !== 200
  ) {
    if (Date.now() > deadline) throw new Error('the Service does not answer ready');
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function openSmokeSessions(): Promise<number> {
  const c = new pg.Client({ connectionString: cluster.hostServices.postgres.url('license') });
  await c.connect();
  try {
    return (
      await c.query(`SELECT count(*)::int AS n FROM sessions WHERE ended_at IS NULL AND hardware_id LIKE $1`, [
        `${SMOKE_HARDWARE_PREFIX}%`,
      ])
    ).rows[0].n;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  cluster = await upEmbedded({ name: 'verdict', stateDir: STATE, nodes: 3 });
  url = cluster.serviceUrl(w.nodePort);
  await cluster.images.load(['v1', 'v2'].map((tag) => licenseApi.image(tag)));
  await deploy('v1');
  token = await licenseApiToken(EMBEDDED_PLATFORM, 'smoke-e2e');
}, 900_000);
afterAll(async () => {
  await cluster?.close();
}, 120_000);

describe('smoke on the embedded cluster', () => {
  it('the shipped release PASSes through the Service, and leaves no seat open', async () => {
    const started = Date.now();
    const r = await runSmoke({ app: licenseApi, url, token, expectVersion: 'v1' });
    process.stderr.write(
      `smoke on embedded: ${r.record.verdict} in ${Date.now() - started} ms\n${r.record.gates.map((g) => `  ${g.verdict} ${g.name}: ${g.evidence}`).join('\n')}\n`,
    );
    expect(r.record.gates.filter((g) => g.verdict !== 'PASS')).toEqual([]);
    expect(r.record.gates.map((g) => g.name)).toEqual([
      'ready',
      'metrics',
      'no-token',
      'bad-token',
      'heartbeat-unknown',
      'acquire',
      'heartbeat',
      'release',
      'version',
      'cleanup',
    ]);
    expect(r.run.exchanges.every((e) => e.headers['x-served-by']?.startsWith('license-api-'))).toBe(true);
    expect(await openSmokeSessions()).toBe(0);
  }, 60_000);
});

describe('probes on the embedded cluster', () => {
  it('the shipped release PASSes: endpoints, liveness without each dependency, measured start and propagation, manifests', async () => {
    const objects = await renderRelease(licenseApi.release('v1', EMBEDDED_PLATFORM));
    probes = await runProbes({
      app: licenseApi,
      url,
      target: cluster,
      manifests: { objects, source: 'the v1 release (embedded overlay)' },
      say: (m) => process.stderr.write(`  ${m}\n`),
    });
    for (const c of probes.checks)
      process.stderr.write(
        `${c.name}: ${c.verdict}\n${c.gates.map((g) => `  ${g.verdict} ${g.name}: ${g.evidence}`).join('\n')}\n`,
      );
    expect(probes.error).toBeNull();
    expect(probes.checks.map((c) => [c.name, c.verdict])).toEqual([
      ['probe-endpoints', 'PASS'],
      ['measurements', 'PASS'],
      ['manifests', 'PASS'],
    ]);
    expect(probes.checks[0].gates.map((g) => g.name)).toEqual([
      'startup',
      'liveness',
      'readiness',
      'liveness-without-postgres',
      'liveness-without-redis',
    ]);
    // Postgres gone: liveness 200 on every pod, readiness 503 (it needs Postgres); Redis gone: both 200.
    expect(probes.checks[0].gates[3].evidence).toMatch(/live 200, ready 503.*live 200, ready 503.*live 200, ready 503/);
    expect(probes.checks[0].gates[4].evidence).toMatch(/live 200, ready 200/);
    // Measured: the proxy's 1.1 s lag is the floor of the propagation; a pod starts in seconds (readiness initialDelaySeconds 10 included).
    const { propagationMs, startMs } = probes.measured;
    expect(propagationMs!.ms).toBeGreaterThanOrEqual(cluster.endpointLagMs);
    expect(propagationMs!.ms).toBeLessThan(15_000);
    expect(startMs!.ms).toBeGreaterThan(0);
    expect(startMs!.ms).toBeLessThan(150_000);
    expect(probes.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    const prop = probes.findings.find((f) => f.rule === 'drain.prestop-vs-propagation')!;
    expect(prop.measured).toMatch(
      /endpoint propagation measured \d+(\.\d+)? s \(pod .* deleted → the Service proxy stopped routing new connections to it/,
    );
    expect(probes.findings.find((f) => f.rule === 'startup.budget')!.measured).toMatch(
      /start time measured [\d.]+ s \(pod created → Ready of the replacement/,
    );
  }, 400_000);

  it('a manifest that keeps serving for less than the measured propagation gets that finding, with the measured value', async () => {
    const { propagationMs } = probes.measured;
    const short = await renderRelease(
      licenseApi.release('v1', EMBEDDED_PLATFORM, [
        {
          name: 'short-drain',
          side: 'to',
          what: 'no preStop and a 0.5 s shutdown delay',
          env: { SHUTDOWN_DELAY_MS: '500' },
          transform: (objs) => {
            delete findKind(objs, 'Deployment')!.spec!.template.spec!.containers[0].lifecycle;
          },
        },
      ]),
    );
    const f = lintManifests(short, { deployments: ['license-api'], app: licenseApi.probes, measured: probes.measured }).find(
      (x) => x.rule === 'drain.prestop-vs-propagation',
    )!;
    process.stderr.write(`short drain: ${f.severity} ${f.message}\n`);
    expect(f.severity).toBe('error');
    expect(f.measured).toContain(`endpoint propagation measured ${+(propagationMs!.ms / 1000).toFixed(2)} s`);
    expect(f.measured).toMatch(/no preStop \+ the app keeps serving 0\.5 s .* = 0\.5 s after deletion/);
    expect(f.fix).toMatch(/add lifecycle\.preStop\.sleep\.seconds: \d+/);
    // The naive-shutdown fault (no preStop, no delay) is an error whatever the measurement.
    const naive = await renderRelease(licenseApi.release('v1', EMBEDDED_PLATFORM, [licenseApi.faults['naive-shutdown']]));
    const rules = lintManifests(naive, { deployments: ['license-api'], app: licenseApi.probes, measured: probes.measured })
      .filter((x) => x.severity === 'error')
      .map((x) => x.rule);
    expect(rules).toEqual(expect.arrayContaining(['drain.prestop-vs-propagation', 'drain.naive']));
  });

  it('verdict probes --deployment reads the running Deployment (read-only) and measures start time from its pods', async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          CLI,
          'probes',
          '--url',
          url,
          '--deployment',
          `${w.namespace}/${w.deployment}`,
          '--context',
          cluster.context!,
          '--kubeconfig',
          cluster.kubeconfigPath,
          '--json',
          '--samples',
          '2',
          '--out',
          '/tmp/verdict-suites-e2e',
        ],
        {
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', CI: 'true' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => {
        stdout += d;
      });
      child.stderr!.on('data', (d) => {
        stderr += d;
      });
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    const rec = assertValidRunRecord(JSON.parse(r.stdout));
    expect(rec.target).toMatchObject({ kind: 'existing', context: cluster.context });
    expect(rec.checks.map((c) => [c.name, c.verdict])).toEqual([
      ['probe-endpoints', 'PASS'],
      ['measurements', 'PASS'],
      ['manifests', 'PASS'],
    ]);
    // Read-only on a context: propagation is not measured, so no gate claims it (never PASS on missing evidence).
    const measurements = rec.checks.find((c) => c.name === 'measurements')!;
    expect(measurements.gates.map((g) => g.name)).toEqual(['start time']);
    expect(measurements.description).toMatch(
      /endpoint propagation not measured: the existing target (is not the harness's own|does not observe its data plane)/,
    );
    const manifests = rec.checks.find((c) => c.name === 'manifests')!;
    expect(String(manifests.gates.find((g) => g.name === 'startup.budget')!.observed.measured)).toMatch(
      /start time measured .* from the pods' conditions/,
    );
    expect(String(manifests.gates.find((g) => g.name === 'drain.prestop-vs-propagation')!.observed.measured)).toMatch(
      /not measured; assumed 1 s/,
    );
  }, 120_000);
});

describe('a broken release on the embedded cluster', () => {
  it('a release that answers 500 while ready (errors-after-start, for 10 min) FAILs the smoke on the license checks, with no seat left open', async () => {
    await deploy('v2', [{ ...licenseApi.faults['errors-after-start'], env: { FAULT_ERRORS_AFTER_START_MS: '600000' } }]);
    const r = await runSmoke({ app: licenseApi, url, token, expectVersion: 'v2' });
    const bad = r.record.gates.filter((g) => g.verdict !== 'PASS').map((g) => g.name);
    expect(r.record.verdict).toBe('FAIL');
    expect(bad).toEqual(expect.arrayContaining(['no-token', 'acquire']));
    expect(r.record.gates.find((g) => g.name === 'ready')!.verdict).toBe('PASS');
    expect(await openSmokeSessions()).toBe(0);
  }, 500_000);
});
