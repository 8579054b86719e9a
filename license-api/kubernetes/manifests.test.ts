import { readFile } from 'node:fs/promises';
import type { V1Probe } from '@kubernetes/client-node';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { ofKind, renderKustomization, type KnownKinds, type KubeObject, type KubeObjectOf } from '../../lib/kube/render.ts';
import { lintManifests } from '../../probes/manifest-lint.ts';
import { licenseApiProbes } from '../../apps/license-api/smoke.ts';
import { loadConfig } from '../src/config.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const overlays = ['embedded', 'kind', 'gke'] as const;
const rendered = new Map<string, KubeObject[]>();

beforeAll(async () => {
  for (const o of overlays) rendered.set(o, await renderKustomization(here(`./overlays/${o}`)));
});

function find<K extends keyof KnownKinds>(objs: KubeObject[], kind: K, name: string): KubeObjectOf<K>;
function find(objs: KubeObject[], kind: string, name: string): KubeObject;
function find(objs: KubeObject[], kind: string, name: string): KubeObject {
  const o = objs.find((x) => x.kind === kind && x.metadata.name.startsWith(name));
  if (!o) throw new Error(`${kind}/${name} missing`);
  return o;
}

describe.each(overlays)('overlay %s', (overlay) => {
  it("keeps the seed's rollout, probe and drain settings", () => {
    const objs = rendered.get(overlay)!;
    expect(find(objs, 'Namespace', 'coditect')).toBeTruthy();
    for (const o of objs.filter((x) => x.kind !== 'Namespace'))
      expect([o.kind, o.metadata.namespace]).toEqual([o.kind, 'coditect']);
    const d = find(objs, 'Deployment', 'license-api');
    expect(d.spec!.replicas).toBe(3);
    expect(d.spec!.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const pod = d.spec!.template.spec!;
    const c = pod.containers[0];
    const probe = (p: V1Probe | undefined) => ({
      path: p?.httpGet?.path,
      initialDelaySeconds: p?.initialDelaySeconds,
      periodSeconds: p?.periodSeconds,
      timeoutSeconds: p?.timeoutSeconds,
      failureThreshold: p?.failureThreshold,
    });
    expect(probe(c.startupProbe)).toEqual({
      path: '/health/startup',
      initialDelaySeconds: 0,
      periodSeconds: 1,
      timeoutSeconds: 1,
      failureThreshold: 150,
    });
    expect(probe(c.livenessProbe)).toEqual({
      path: '/health/live',
      initialDelaySeconds: 30,
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 3,
    });
    expect(probe(c.readinessProbe)).toEqual({
      path: '/health/ready',
      initialDelaySeconds: undefined,
      periodSeconds: 5,
      timeoutSeconds: 3,
      failureThreshold: 3,
    });
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8000 }]);
    expect(c.lifecycle?.preStop?.sleep?.seconds).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBe(30);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath ?? e.value]));
    expect(env).toMatchObject({
      HOST: 'status.podIP',
      POD_NAME: 'metadata.name',
      APP_VERSION: "metadata.labels['app.kubernetes.io/version']",
    });
    expect(c.resources?.requests).toBeTruthy();
    expect(c.resources?.limits?.memory).toBeTruthy();
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    const pdb = find(objs, 'PodDisruptionBudget', 'license-api');
    expect(pdb.spec?.minAvailable).toBe(2);
  });

  it('passes the rollout/probe/drain lint with no error and no warning', () => {
    const findings = lintManifests(rendered.get(overlay)!, { deployments: ['license-api'], app: licenseApiProbes });
    expect(findings.filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it('carries configuration the app accepts, whose drain fits the grace period', () => {
    const objs = rendered.get(overlay)!;
    const cm = find(objs, 'ConfigMap', 'license-api-config').data;
    const secret = ofKind(objs, 'Secret').find((x) => x.metadata.name.startsWith('license-api-secrets'));
    const secretEnv = secret
      ? Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString()]))
      : { DATABASE_URL: 'postgres://x', REDIS_URL: 'redis://x', JWT_SECRET: 'y'.repeat(32) }; // gke: synced from Secret Manager
    const config = loadConfig({ ...cm, ...secretEnv });
    const d = find(objs, 'Deployment', 'license-api');
    const pod = d.spec!.template.spec!;
    const c = pod.containers[0];
    expect(c.lifecycle!.preStop!.sleep!.seconds + config.SHUTDOWN_TIMEOUT_MS / 1000).toBeLessThan(
      pod.terminationGracePeriodSeconds!,
    );
    expect(config.DEPENDENCY_TIMEOUT_MS).toBeLessThan(c.readinessProbe!.timeoutSeconds! * 1000);
    // A request in flight at SIGTERM ends by its deadline, before the forced exit.
    expect(config.SHUTDOWN_DELAY_MS + config.REQUEST_DEADLINE_MS).toBeLessThan(config.SHUTDOWN_TIMEOUT_MS);
    expect(config.SHUTDOWN_MODE).toBe('graceful');
  });
});

describe('target specifics', () => {
  it('embedded and kind expose nodePort 30080; kind-config maps it to 127.0.0.1:30080 with digest-pinned nodes', async () => {
    for (const o of ['embedded', 'kind']) {
      const svc = find(rendered.get(o)!, 'Service', 'license-api');
      expect(svc.spec?.type).toBe('NodePort');
      expect(svc.spec?.ports?.[0]).toMatchObject({ nodePort: 30080, targetPort: 'http' });
    }
    const kind = parse(await readFile(here('../../kind-config.yaml'), 'utf8'));
    expect(kind.nodes.map((n: any) => n.role)).toEqual(['control-plane', 'worker', 'worker']);
    for (const n of kind.nodes) expect(n.image).toMatch(/^kindest\/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}$/);
    expect(kind.nodes[0].extraPortMappings).toEqual([
      { containerPort: 30080, hostPort: 30080, listenAddress: '127.0.0.1', protocol: 'TCP' },
    ]);
  });

  it('kind runs Postgres and Redis in the cluster; embedded points at the host bridge', () => {
    expect(
      rendered
        .get('kind')!
        .filter((o) => o.kind === 'Deployment')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['license-api', 'postgres', 'redis']);
    expect(
      rendered
        .get('embedded')!
        .filter((o) => o.kind === 'Deployment')
        .map((o) => o.metadata.name),
    ).toEqual(['license-api']);
    const secret = find(rendered.get('embedded')!, 'Secret', 'license-api-secrets');
    expect(Buffer.from(secret.data?.DATABASE_URL ?? '', 'base64').toString()).toContain('@10.244.0.1:');
  });

  it('gke pulls from Artifact Registry, uses Workload Identity and generates no secret', () => {
    const objs = rendered.get('gke')!;
    const image = find(objs, 'Deployment', 'license-api').spec?.template.spec?.containers[0].image;
    expect(image).toMatch(/^[a-z0-9-]+-docker\.pkg\.dev\/[^/]+\/[^/]+\/license-api:/);
    expect(JSON.stringify(objs)).not.toContain('gcr.io');
    expect(find(objs, 'ServiceAccount', 'license-api').metadata.annotations?.['iam.gke.io/gcp-service-account']).toMatch(
      /@.*\.iam\.gserviceaccount\.com$/,
    );
    expect(objs.some((o) => o.kind === 'Secret')).toBe(false);
    expect(find(objs, 'Service', 'license-api').spec?.type).toBe('ClusterIP');
  });
});

describe('the lint catches broken configurations', () => {
  const broken = (mutate: (objs: KubeObject[]) => void) => {
    const objs = structuredClone(rendered.get('embedded')!);
    mutate(objs);
    return lintManifests(objs, { deployments: ['license-api'], app: licenseApiProbes })
      .filter((f) => f.severity === 'error')
      .map((f) => f.rule);
  };
  const dep = (objs: KubeObject[]) => find(objs, 'Deployment', 'license-api').spec!;
  const ctr = (objs: KubeObject[]) => dep(objs).template.spec!.containers[0];
  const cm = (objs: KubeObject[]) => find(objs, 'ConfigMap', 'license-api-config').data!;

  it.each([
    [
      'maxUnavailable 1',
      (o: KubeObject[]) => {
        dep(o).strategy!.rollingUpdate!.maxUnavailable = 1;
      },
      'rollout.max-unavailable',
    ],
    [
      'no readiness probe',
      (o: KubeObject[]) => {
        delete ctr(o).readinessProbe;
      },
      'probe.readiness-missing',
    ],
    [
      'drain longer than grace',
      (o: KubeObject[]) => {
        cm(o).SHUTDOWN_TIMEOUT_MS = '28000';
      },
      'drain.exceeds-grace',
    ],
    [
      'naive shutdown',
      (o: KubeObject[]) => {
        cm(o).SHUTDOWN_MODE = 'naive';
      },
      'drain.naive',
    ],
    [
      'no delay at all',
      (o: KubeObject[]) => {
        delete ctr(o).lifecycle;
        cm(o).SHUTDOWN_DELAY_MS = '0';
      },
      'drain.prestop-vs-propagation',
    ],
    [
      'PDB that blocks drains',
      (o: KubeObject[]) => {
        find(o, 'PodDisruptionBudget', 'license-api').spec!.minAvailable = 3;
      },
      'pdb.blocks-drain',
    ],
    [
      'Service selecting nothing',
      (o: KubeObject[]) => {
        find(o, 'Service', 'license-api').spec!.selector = { app: 'typo' };
      },
      'service.selector',
    ],
    [
      'readiness dependency timeout too long',
      (o: KubeObject[]) => {
        cm(o).DEPENDENCY_TIMEOUT_MS = '3000';
      },
      'probe.dependency-timeout',
    ],
  ])('%s', (_name, mutate, rule) => {
    expect(broken(mutate)).toContain(rule);
  });
});
