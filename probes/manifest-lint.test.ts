import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { licenseApiProbes, CONFIG_DEFAULTS } from '../apps/license-api/smoke.ts';
import { isKind, renderKustomization, type KnownKinds, type KubeObject, type KubeObjectOf } from '../lib/kube/render.ts';
import { loadConfig } from '../license-api/src/config.ts';
import { findingVerdict, lintManifests, preStopDelayMs, RULES, type Finding, type LintOptions } from './manifest-lint.ts';

// Every overlay passes the zero-downtime rules with no warning; a manifest broken in one way gives
// the finding for that way, naming the field, what is there or was measured, the rule and the fix.
const overlays = ['embedded', 'kind', 'gke'] as const;
const rendered = new Map<string, KubeObject[]>();
const overlayDir = (o: string) => fileURLToPath(new URL(`../license-api/kubernetes/overlays/${o}`, import.meta.url));
beforeAll(async () => {
  for (const o of overlays) rendered.set(o, await renderKustomization(overlayDir(o)));
});

const lint = (objs: KubeObject[], o: Partial<LintOptions> = {}) =>
  lintManifests(objs, { deployments: ['license-api'], app: licenseApiProbes, ...o });
const find = <K extends keyof KnownKinds>(objs: KubeObject[], kind: K, name: string) =>
  objs.find((x): x is KubeObjectOf<K> => isKind(x, kind) && x.metadata.name.startsWith(name))!;
const dep = (o: KubeObject[]) => find(o, 'Deployment', 'license-api').spec!;
const pod = (o: KubeObject[]) => dep(o).template.spec!;
const ctr = (o: KubeObject[]) => pod(o).containers[0];
const cm = (o: KubeObject[]) => find(o, 'ConfigMap', 'license-api-config').data!;
const pdb = (o: KubeObject[]) => find(o, 'PodDisruptionBudget', 'license-api').spec!;
const svc = (o: KubeObject[]) => find(o, 'Service', 'license-api').spec!;
const broken = (mutate: (o: KubeObject[]) => void) => {
  const o = structuredClone(rendered.get('embedded')!);
  mutate(o);
  return o;
};

describe.each(overlays)('overlay %s', (overlay) => {
  it('has no error and no warning; the measured rules report their numbers as info', () => {
    const f = lint(rendered.get(overlay)!, {
      measured: { propagationMs: { ms: 1200, source: 'test' }, startMs: { ms: 12_000, source: 'test' } },
    });
    expect(f.filter((x) => x.severity !== 'info')).toEqual([]);
    expect(f.map((x) => x.rule).sort()).toEqual(['drain.grace-period', 'drain.prestop-vs-propagation', 'startup.budget']);
    const p = f.find((x) => x.rule === 'drain.prestop-vs-propagation')!;
    expect(p.measured).toMatch(
      /preStop sleep 5 s \+ the app keeps serving 3 s after SIGTERM \(SHUTDOWN_DELAY_MS=3000\) = 8 s after deletion; endpoint propagation measured 1\.2 s \(test\)/,
    );
  });
});

describe('every finding, from a manifest broken that way', () => {
  const measured = {
    propagationMs: { ms: 1200, source: 'measured on the embedded cluster' },
    startMs: { ms: 12_000, source: 'pod created → Ready' },
  };
  const CASES: Array<[string, (o: KubeObject[]) => void, string, Finding['severity'], RegExp?]> = [
    [
      'one replica',
      (o) => {
        dep(o).replicas = 1;
        pdb(o).minAvailable = 0;
      },
      'replicas.min-two',
      'error',
      /spec\.replicas/,
    ],
    [
      'Recreate',
      (o) => {
        dep(o).strategy = { type: 'Recreate' };
      },
      'rollout.strategy',
      'error',
    ],
    [
      'maxUnavailable 1',
      (o) => {
        dep(o).strategy!.rollingUpdate!.maxUnavailable = 1;
      },
      'rollout.max-unavailable',
      'error',
    ],
    [
      'maxSurge 0',
      (o) => {
        dep(o).strategy!.rollingUpdate!.maxSurge = 0;
      },
      'rollout.max-surge',
      'error',
    ],
    [
      'no PDB',
      (o) => {
        o.splice(o.indexOf(find(o, 'PodDisruptionBudget', 'license-api')), 1);
      },
      'pdb.missing',
      'warning',
    ],
    [
      'a PDB that blocks drains',
      (o) => {
        pdb(o).minAvailable = 3;
      },
      'pdb.blocks-drain',
      'error',
    ],
    [
      'a PDB that keeps nothing',
      (o) => {
        pdb(o).minAvailable = 0;
      },
      'pdb.keeps-capacity',
      'warning',
    ],
    [
      'runs as root',
      (o) => {
        delete pod(o).securityContext;
      },
      'security.run-as-non-root',
      'warning',
    ],
    [
      'no readiness probe',
      (o) => {
        delete ctr(o).readinessProbe;
      },
      'probe.readiness-missing',
      'error',
    ],
    [
      'no liveness probe',
      (o) => {
        delete ctr(o).livenessProbe;
      },
      'probe.liveness-missing',
      'warning',
    ],
    [
      'a probe timeout over its period',
      (o) => {
        ctr(o).readinessProbe!.timeoutSeconds = 10;
      },
      'probe.timeout-over-period',
      'warning',
    ],
    [
      'liveness successThreshold 2',
      (o) => {
        ctr(o).livenessProbe!.successThreshold = 2;
      },
      'probe.success-threshold',
      'error',
    ],
    [
      'readiness on a path that never answers (never-ready)',
      (o) => {
        ctr(o).readinessProbe!.httpGet!.path = '/health/never';
      },
      'probe.path',
      'error',
      /\/health\/never/,
    ],
    [
      'liveness the same check as readiness',
      (o) => {
        ctr(o).livenessProbe!.httpGet = { ...ctr(o).readinessProbe!.httpGet! };
      },
      'probe.liveness-equals-readiness',
      'error',
    ],
    [
      'liveness on the dependency-checking endpoint',
      (o) => {
        ctr(o).livenessProbe!.httpGet!.path = '/health/ready';
        ctr(o).readinessProbe!.httpGet!.port = 8000;
      },
      'probe.liveness-on-dependencies',
      'error',
    ],
    [
      'a startup budget under the measured start time',
      (o) => {
        ctr(o).startupProbe!.failureThreshold = 2;
      },
      'startup.budget',
      'error',
      /budget .* = 2 s; start time measured 12 s \(pod created → Ready\)/,
    ],
    [
      'a preStop shorter than the measured propagation',
      (o) => {
        delete ctr(o).lifecycle;
        cm(o).SHUTDOWN_DELAY_MS = '500';
      },
      'drain.prestop-vs-propagation',
      'error',
      /no preStop \+ the app keeps serving 0\.5 s .* = 0\.5 s after deletion; endpoint propagation measured 1\.2 s/,
    ],
    [
      'no delay at all',
      (o) => {
        delete ctr(o).lifecycle;
        cm(o).SHUTDOWN_DELAY_MS = '0';
      },
      'drain.prestop-vs-propagation',
      'error',
    ],
    [
      'a naive shutdown',
      (o) => {
        cm(o).SHUTDOWN_MODE = 'naive';
      },
      'drain.naive',
      'error',
    ],
    [
      'a grace period shorter than preStop + drain + the longest request',
      (o) => {
        pod(o).terminationGracePeriodSeconds = 10;
        cm(o).SHUTDOWN_TIMEOUT_MS = '4000';
      },
      'drain.grace-period',
      'error',
      /10 s; preStop 5 s \+ keep serving 3 s \+ longest request 5 s .* = 13 s/,
    ],
    [
      "a forced exit after the kubelet's SIGKILL",
      (o) => {
        cm(o).SHUTDOWN_TIMEOUT_MS = '28000';
      },
      'drain.exceeds-grace',
      'error',
    ],
    [
      'a readiness dependency timeout over the probe timeout',
      (o) => {
        cm(o).DEPENDENCY_TIMEOUT_MS = '3000';
      },
      'probe.dependency-timeout',
      'error',
    ],
    [
      'no resource requests',
      (o) => {
        delete ctr(o).resources!.requests;
      },
      'resources.requests',
      'warning',
    ],
    [
      'no memory limit',
      (o) => {
        delete ctr(o).resources!.limits;
      },
      'resources.memory-limit',
      'warning',
    ],
    [
      'privilege escalation allowed',
      (o) => {
        delete ctr(o).securityContext!.allowPrivilegeEscalation;
      },
      'security.privilege-escalation',
      'warning',
    ],
    [
      'capabilities kept',
      (o) => {
        ctr(o).securityContext!.capabilities!.drop = [];
      },
      'security.capabilities',
      'warning',
    ],
    [
      'a Service targetPort naming no port',
      (o) => {
        svc(o).ports![0].targetPort = 'web';
      },
      'service.target-port',
      'error',
    ],
    [
      'a Service selecting nothing',
      (o) => {
        svc(o).selector = { app: 'typo' };
      },
      'service.selector',
      'error',
    ],
  ];
  it('the rule table: ids of their own, and each rule broken by one of the cases below', () => {
    const ids = RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...new Set(CASES.map((c) => c[2]))].sort()).toEqual([...ids].sort());
  });
  it.each(CASES)('%s', (_name, mutate, rule, severity, measuredText) => {
    const f = lint(broken(mutate), { measured });
    const hit = f.filter((x) => x.rule === rule && x.severity !== 'info');
    expect(hit.length, `${rule} in ${JSON.stringify(f.map((x) => `${x.severity} ${x.rule}`))}`).toBeGreaterThan(0);
    expect(hit[0].severity).toBe(severity);
    for (const k of ['field', 'measured', 'required', 'fix', 'message'] as const) expect(hit[0][k].length).toBeGreaterThan(0);
    expect(hit[0].fix).not.toBe('none needed');
    if (measuredText) expect(`${hit[0].field} ${hit[0].measured}`).toMatch(measuredText);
  });

  it('what was not measured is said so, with the assumption and its source, and is at most a warning', () => {
    const short = broken((o) => {
      delete ctr(o).lifecycle;
      cm(o).SHUTDOWN_DELAY_MS = '500';
      ctr(o).startupProbe!.failureThreshold = 2;
    });
    const f = lint(short);
    const prop = f.find((x) => x.rule === 'drain.prestop-vs-propagation')!;
    expect(prop.severity).toBe('warning');
    expect(prop.measured).toMatch(/not measured; assumed 1 s from kube-proxy's default minSyncPeriod/);
    const start = f.find((x) => x.rule === 'startup.budget')!;
    expect(start.severity).toBe('warning');
    expect(start.measured).toMatch(/not measured; assumed 30 s from the manifest's own livenessProbe\.initialDelaySeconds/);
    // The same manifest with the values measured: errors.
    const m = lint(short, { measured: { propagationMs: { ms: 1200, source: 'x' }, startMs: { ms: 12_000, source: 'y' } } });
    expect(
      m
        .filter((x) => x.severity === 'error')
        .map((x) => x.rule)
        .sort(),
    ).toEqual(['drain.prestop-vs-propagation', 'startup.budget']);
  });

  it('--fail-on: errors always fail, warnings only when asked, info never', () => {
    const f = (severity: Finding['severity']) => ({ severity }) as Finding;
    expect([
      findingVerdict(f('error'), 'error'),
      findingVerdict(f('warning'), 'error'),
      findingVerdict(f('info'), 'error'),
    ]).toEqual(['FAIL', 'PASS', 'PASS']);
    expect([
      findingVerdict(f('error'), 'warning'),
      findingVerdict(f('warning'), 'warning'),
      findingVerdict(f('info'), 'warning'),
    ]).toEqual(['FAIL', 'FAIL', 'PASS']);
  });

  it('reads a preStop delay from sleep or an exec of sleep', () => {
    expect(preStopDelayMs({ sleep: { seconds: 7 } })).toBe(7000);
    expect(preStopDelayMs({ exec: { command: ['/bin/sh', '-c', 'sleep 15'] } })).toBe(15_000);
    expect(preStopDelayMs({ httpGet: { path: '/drain', port: 'http' } })).toBe(0);
    expect(preStopDelayMs(undefined)).toBe(0);
  });

  it("the profile's drain defaults are the app's own (license-api/src/config.ts)", () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://x', REDIS_URL: 'redis://x', JWT_SECRET: 'y'.repeat(32) });
    for (const [k, v] of Object.entries(CONFIG_DEFAULTS)) expect(c[k as keyof typeof c], k).toBe(v);
  });
});
