import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  assertNotDenied,
  assertTargetAllowed,
  ConfigFileError,
  harnessConfigSchema,
  loadHarnessConfig,
  TargetNotAllowedError,
} from './config.ts';

const t = (o: { owned?: boolean; context?: string | null; kind?: 'embedded' | 'kind' | 'existing' }) => ({
  owned: o.owned ?? false,
  kind: o.kind ?? 'existing',
  context: o.context ?? null,
  name: o.context ?? 'x',
});

describe('context allow-list', () => {
  const defaults = harnessConfigSchema.parse({});

  it('a cluster the harness created is always allowed', () => {
    expect(() => assertTargetAllowed(t({ owned: true, kind: 'embedded' }), defaults)).not.toThrow();
    expect(() => assertTargetAllowed(t({ owned: true, kind: 'kind', context: 'kind-verdict' }), defaults)).not.toThrow();
  });

  it('refuses any existing context by default, naming the fix', () => {
    expect(() => assertTargetAllowed(t({ context: 'staging' }), defaults, 'verdict.config.yaml')).toThrow(
      /not in allowedContexts \(verdict\.config\.yaml\).*allowedContexts: \["staging"\]/s,
    );
  });

  it('allows a listed context, by name or glob', () => {
    const c = harnessConfigSchema.parse({ allowedContexts: ['staging', 'kind-*'] });
    expect(() => assertTargetAllowed(t({ context: 'staging' }), c)).not.toThrow();
    expect(() => assertTargetAllowed(t({ context: 'kind-ci-42' }), c)).not.toThrow();
    expect(() => assertTargetAllowed(t({ context: 'staging-2' }), c)).toThrow(TargetNotAllowedError);
    // A glob is anchored and `.` is literal.
    expect(() => assertTargetAllowed(t({ context: 'xkind-ci' }), c)).toThrow(TargetNotAllowedError);
  });

  it('a deny pattern wins over an allow, and production is denied by default', () => {
    const c = harnessConfigSchema.parse({ allowedContexts: ['*'] });
    expect(() => assertTargetAllowed(t({ context: 'gke_acme_us-central1_prod-cluster' }), c)).toThrow(
      /matches deniedContexts "\*prod\*"/,
    );
    expect(() => assertTargetAllowed(t({ context: 'gke_acme_us-central1_staging' }), c)).not.toThrow();
    const strict = harnessConfigSchema.parse({ allowedContexts: ['*'], deniedContexts: ['gke_*'] });
    expect(() => assertTargetAllowed(t({ context: 'gke_acme_us-central1_staging' }), strict)).toThrow(TargetNotAllowedError);
  });

  it('a denial matches in any letter case: production spelled PROD or Production is refused (the allow-list says gke_*)', () => {
    const c = harnessConfigSchema.parse({ allowedContexts: ['gke_*', 'staging*'] });
    for (const context of ['gke_acme_us-central1_PROD', 'gke_acme_Production', 'gke_acme_pRoD-eu', 'gke_acme_prod'])
      expect(() => assertTargetAllowed(t({ context }), c)).toThrow(/matches deniedContexts "\*prod\*".*any letter case/);
    expect(() => assertNotDenied(t({ context: 'gke_acme_PRODUCTION' }), c)).toThrow(TargetNotAllowedError);
    expect(() => assertNotDenied(t({ context: 'gke_acme_staging' }), c)).not.toThrow();
    const upper = harnessConfigSchema.parse({ allowedContexts: ['*'], deniedContexts: ['GKE_*_LIVE'] });
    expect(() => assertTargetAllowed(t({ context: 'gke_acme_live' }), upper)).toThrow(/deniedContexts "GKE_\*_LIVE"/);
  });

  it('an allowance matches the name as written (Kubernetes context names are case-sensitive): fail-closed', () => {
    const c = harnessConfigSchema.parse({ allowedContexts: ['staging-*'] });
    expect(() => assertTargetAllowed(t({ context: 'staging-east' }), c)).not.toThrow();
    expect(() => assertTargetAllowed(t({ context: 'Staging-East' }), c)).toThrow(/not in allowedContexts/);
  });
});

describe('config file', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const file = async (name: string, text: string) => {
    const d = await mkdtemp(join(tmpdir(), 'verdict-config-'));
    dirs.push(d);
    await writeFile(join(d, name), text);
    return join(d, name);
  };

  it('defaults match the seed: under 1 % after a deploy, no failure during a disruption', async () => {
    const c = harnessConfigSchema.parse({});
    expect(c.gates.deploy.maxErrorRate).toBe(0.01);
    expect(c.gates.disruption.maxErrorRate).toBe(0);
    expect(c.allowedContexts).toEqual([]);
  });

  it('reads YAML and JSON, and names the bad field and where to look', async () => {
    const ok = await loadHarnessConfig(
      await file('v.yaml', 'allowedContexts: [staging]\ngates:\n  deploy:\n    maxErrorRate: 0.005\n'),
    );
    expect(ok.config.allowedContexts).toEqual(['staging']);
    expect(ok.config.gates.deploy.maxErrorRate).toBe(0.005);
    expect(ok.config.gates.deploy.minRequests).toBe(300);
    const json = await loadHarnessConfig(await file('v.json', '{"experiments": {"rate": 50}}'));
    expect(json.config.experiments.rate).toBe(50);
    await expect(loadHarnessConfig(await file('bad.yaml', 'gates:\n  deploy:\n    maxErrorRate: 2\n'))).rejects.toThrow(
      /gates\.deploy\.maxErrorRate: .*\n.*experiments\/config\.ts/s,
    );
    await expect(loadHarnessConfig(await file('typo.yaml', 'allowedContext: [x]\n'))).rejects.toThrow(ConfigFileError);
    await expect(loadHarnessConfig('/nonexistent/verdict.config.yaml')).rejects.toThrow(/cannot read it/);
  });
});
