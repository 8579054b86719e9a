import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi } from '../apps/license-api/profile.ts';
import { startTestApi, type TestApi } from '../license-api/test/harness.ts';
import { freshDatabase } from '../test/databases.ts';
import { freePort } from '../lib/net/free-port.ts';
import { renderKustomization } from '../lib/kube/render.ts';
import { startFaultProxy, type FaultPlan } from '../suites/testing/fault-proxy.ts';
import { assertValidRunRecord } from '../reports/render/json.ts';
import { loadManifests } from './manifest-source.ts';
import { runProbes, type ProbesResult } from './probes.ts';

// The probe checks against the license API started here: the shipped release and manifests PASS,
// endpoints broken one way each FAIL the probe that needs them, a server that is not the license
// API FAILs, an unreachable URL is ERROR; bad manifests FAIL the manifests check, --fail-on decides
// what a warning does.
const overlay = fileURLToPath(new URL('../license-api/kubernetes/overlays/embedded', import.meta.url));
const CLI = fileURLToPath(new URL('../cli/verdict.ts', import.meta.url));
const gate = (r: ProbesResult, check: string, name: string) =>
  r.checks.find((c) => c.name === check)?.gates.find((g) => g.name === name);
const verdicts = (r: ProbesResult, check: string) =>
  Object.fromEntries(r.checks.find((c) => c.name === check)!.gates.map((g) => [g.name, g.verdict]));

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ DATABASE_URL: await freshDatabase('probes'), LICENSE_SEED: 'SMOKE-KEY=5' });
});
afterAll(async () => {
  await api?.[Symbol.asyncDispose]();
});

describe('runProbes against the license API in this process', () => {
  it("the shipped release and its manifests PASS; each answer is judged against the manifest's timeoutSeconds", async () => {
    const r = await runProbes({ app: licenseApi, url: api.url, manifests: await loadManifests(overlay) });
    expect(r.error).toBeNull();
    expect(r.checks.map((c) => [c.name, c.kind, c.verdict])).toEqual([
      ['probe-endpoints', 'probe', 'PASS'],
      ['manifests', 'probe', 'PASS'],
    ]);
    expect(verdicts(r, 'probe-endpoints')).toEqual({ startup: 'PASS', liveness: 'PASS', readiness: 'PASS' });
    expect(gate(r, 'probe-endpoints', 'readiness')!.observed).toMatchObject({ timeout_seconds: 3, samples: 5, budget_ms: 1500 });
    expect(gate(r, 'probe-endpoints', 'liveness')!.observed).toMatchObject({ timeout_seconds: 5, budget_ms: 2500 });
    expect(gate(r, 'probe-endpoints', 'readiness')!.evidence).toMatch(/half of the manifest's readinessProbe timeoutSeconds 3 s/);
    // Unmeasured values are said so; every finding is a note.
    expect(r.findings.every((f) => f.severity === 'info')).toBe(true);
    expect(gate(r, 'manifests', 'drain.prestop-vs-propagation')!.evidence).toMatch(/not measured; assumed 1 s/);
  });

  it("without manifests, Kubernetes' default timeoutSeconds (1 s) is the yardstick", async () => {
    const r = await runProbes({ app: licenseApi, url: api.url, samples: 2 });
    expect(r.checks.map((c) => c.name)).toEqual(['probe-endpoints']);
    expect(gate(r, 'probe-endpoints', 'startup')!.evidence).toMatch(/no manifest given: Kubernetes' default timeoutSeconds 1 s/);
    expect(r.checks[0].description).toMatch(/liveness without dependencies is checked only on a target that can take them away/);
  });

  it.each<[string, (q: { path: string }) => FaultPlan | undefined, string]>([
    [
      'liveness that answers 503',
      (q) => (q.path === '/health/live' ? { answer: { status: 503, body: '{"status":"down"}' } } : undefined),
      'liveness',
    ],
    [
      'readiness that answers 200 without the body',
      (q) => (q.path === '/health/ready' ? { answer: { status: 200, body: 'OK' } } : undefined),
      'readiness',
    ],
    [
      'readiness that says ready without its database check',
      (q) => (q.path === '/health/ready' ? { answer: { status: 200, body: '{"status":"ready","checks":{}}' } } : undefined),
      'readiness',
    ],
    [
      'a startup probe still starting',
      (q) => (q.path === '/health/startup' ? { answer: { status: 503, body: '{"status":"starting"}' } } : undefined),
      'startup',
    ],
    [
      'readiness slower than half its timeoutSeconds (3 s)',
      (q) => (q.path === '/health/ready' ? { holdMs: 1700 } : undefined),
      'readiness',
    ],
  ])('FAILs the probe that needs it: %s', async (_name, plan, failing) => {
    await using proxy = await startFaultProxy(api.url, plan);
    const r = await runProbes({ app: licenseApi, url: proxy.url, manifests: await loadManifests(overlay), samples: 2 });
    const bad = Object.entries(verdicts(r, 'probe-endpoints'))
      .filter(([, v]) => v !== 'PASS')
      .map(([k]) => k);
    expect(bad).toEqual([failing]);
    expect(r.checks[0].verdict).toBe('FAIL');
  });

  it('a manifest whose readiness asks a path that never answers (never-ready) FAILs both the live check and the manifest check', async () => {
    const m = await loadManifests(overlay);
    const objects = structuredClone(m.objects);
    licenseApi.faults['never-ready'].transform!(objects);
    const r = await runProbes({ app: licenseApi, url: api.url, manifests: { objects, source: 'never-ready' }, samples: 1 });
    expect(gate(r, 'probe-endpoints', 'readiness')!.verdict).toBe('FAIL');
    expect(gate(r, 'probe-endpoints', 'readiness')!.evidence).toMatch(/GET \/health\/never answered 404/);
    expect(gate(r, 'manifests', 'probe.path')!.verdict).toBe('FAIL');
  });

  it('a server that is not the license API FAILs every probe; an unreachable URL is ERROR', async () => {
    const other: Server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hi</html>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const r = await runProbes({
        app: licenseApi,
        url: `http://127.0.0.1:${(other.address() as AddressInfo).port}`,
        samples: 1,
      });
      expect(verdicts(r, 'probe-endpoints')).toEqual({ startup: 'FAIL', liveness: 'FAIL', readiness: 'FAIL' });
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
    const port = await freePort();
    const u = await runProbes({
      app: licenseApi,
      url: `http://127.0.0.1:${port}`,
      manifests: await loadManifests(overlay),
      samples: 1,
    });
    expect(u.error).toMatch(new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/health/startup: ECONNREFUSED`));
    expect(u.checks[0].verdict).toBe('ERROR');
  });
});

// ----------------------------------------------------------------------------------- the command

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
}

describe('verdict probes (the command)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verdict-probes-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const writeYaml = async (name: string, mutate: (objs: any[]) => void) => {
    const objs = await renderKustomization(overlay);
    mutate(objs);
    const file = join(dir, name);
    await writeFile(file, objs.map((o) => stringify(o)).join('---\n'));
    return file;
  };

  it('PASSes the shipped overlay (exit 0) and writes the run directory', async () => {
    const out = join(dir, 'out');
    const r = await cli(['probes', '--url', api.url, '--manifests', overlay, '--samples', '2', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const rec = assertValidRunRecord(JSON.parse(r.stdout));
    expect(rec).toMatchObject({ command: 'probes', verdict: 'PASS', target: { kind: 'url' } });
    expect(JSON.parse(await readFile(join(out, 'latest', 'verdict.json'), 'utf8')).verdict).toBe('PASS');
  });

  it("a YAML file without preStop and without the app's delay FAILs (exit 1) with the finding", async () => {
    const file = await writeYaml('no-delay.yaml', (objs) => {
      const d = objs.find((o) => o.kind === 'Deployment');
      delete d.spec.template.spec.containers[0].lifecycle;
      objs.find((o) => o.kind === 'ConfigMap').data.SHUTDOWN_DELAY_MS = '0';
    });
    const r = await cli(['probes', '--url', api.url, '--manifests', file, '--samples', '1', '--out', join(dir, 'out')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /✗ FAIL +drain\.prestop-vs-propagation: error: .*lifecycle\.preStop: keeps accepting for no preStop \+ the app keeps serving 0 s/,
    );
  });

  it('--fail-on warning turns a warning (no PodDisruptionBudget) into FAIL', async () => {
    const file = await writeYaml('no-pdb.yaml', (objs) => {
      objs.splice(
        objs.findIndex((o) => o.kind === 'PodDisruptionBudget'),
        1,
      );
    });
    const base = ['probes', '--url', api.url, '--manifests', file, '--samples', '1', '--out', join(dir, 'out')];
    expect((await cli(base)).code).toBe(0);
    const strict = await cli([...base, '--fail-on', 'warning']);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(/pdb\.missing: warning:/);
  });

  it('bad usage exits 64 naming the fix', async () => {
    expect((await cli(['probes'])).code).toBe(64);
    const noCtx = await cli(['probes', '--url', api.url, '--deployment', 'coditect/license-api']);
    expect(noCtx.code).toBe(64);
    expect(noCtx.stderr).toMatch(/--deployment needs --context/);
    expect((await cli(['probes', '--url', api.url, '--deployment', 'a/b', '--context', 'c', '--manifests', overlay])).code).toBe(
      64,
    );
    const missing = await cli(['probes', '--url', api.url, '--manifests', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(64);
    expect(missing.stderr).toMatch(/does not exist/);
    expect((await cli(['probes', '--url', api.url, '--fail-on', 'info'])).code).toBe(64);
  });
});
