import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRunRecord } from '../reports/run-directory.ts';
import { checkDeployWindowOrRefuse } from './deploy-window.ts';
import { UsageError } from './exit-codes.ts';
import { runCli } from './testing/run-cli.ts';

const root = mkdtempSync(join(tmpdir(), 'verdict-window-cli-'));
const day = 86_400_000;
const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const now = Date.now();
const CONTEXT = 'gke_coditect-cloud-infra_us-central1-a_production-gke-cluster';

// Production is frozen from yesterday through tomorrow (UTC): closed whenever the test runs, and the
// next allowed time is the start of the day after tomorrow.
const frozen = join(root, 'frozen.yaml');
writeFileSync(
  frozen,
  `deployWindows:
  production:
    timeZone: UTC
    contexts: ["gke_*_production-*"]
    windows:
      - { days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00" }
    freezes:
      - { from: ${date(now - day)}, to: ${date(now + day)}, reason: "release freeze for the test" }
  staging:
    timeZone: UTC
    contexts: ["gke_*_staging-*"]
`,
);
const nextText = `${date(now + 2 * day)}T00:00Z`;

// A stand-in apiserver that only counts connections: the refusal must come before any.
let apiserver: Server;
let connections = 0;
const sockets = new Set<Socket>();
const kubeconfig = join(root, 'kubeconfig');
beforeAll(async () => {
  apiserver = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.destroy();
  });
  await new Promise<void>((r) => apiserver.listen(0, '127.0.0.1', r));
  const port = (apiserver.address() as { port: number }).port;
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: "t" } }]
contexts: [{ name: ${CONTEXT}, context: { cluster: c, user: u } }]
current-context: ${CONTEXT}
`,
  );
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => apiserver.close(r));
  rmSync(root, { recursive: true, force: true });
});

describe('the window check', () => {
  const quiet = () => {};
  it('refuses a closed environment with why and the next allowed time', async () => {
    const err = await checkDeployWindowOrRefuse('deploy', { config: frozen }, { context: CONTEXT, now, say: quiet }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/^deploy refused: production is closed for deploys: frozen: release freeze for the test/);
    expect(err.message).toContain(`next allowed: `);
    expect(err.message).toContain(`= ${nextText}`);
    expect(err.message).toMatch(/--override-window "<reason>"/);
  });

  it('an override goes on and says who and why', async () => {
    const said: string[] = [];
    const r = await checkDeployWindowOrRefuse(
      'gate',
      { config: frozen, overrideWindow: ' hotfix INC-42 ' },
      { context: CONTEXT, now, say: (m) => said.push(m), env: { GITHUB_ACTOR: 'octocat', USER: 'root' } },
    );
    expect(r.approval).toMatchObject({
      what: 'deploy-window',
      by: 'octocat',
      reason: 'hotfix INC-42',
      at: new Date(now).toISOString(),
    });
    expect(r.approval?.detail).toMatch(/^production: frozen: release freeze for the test .*next allowed: /);
    expect(said.join('\n')).toMatch(/OVERRIDDEN by octocat: hotfix INC-42/);
    expect(
      (
        await checkDeployWindowOrRefuse(
          'gate',
          { config: frozen, overrideWindow: 'x' },
          { context: CONTEXT, now, say: quiet, env: { USER: 'jane' } },
        )
      ).approval?.by,
    ).toBe('jane');
  });

  it('an open environment, or one without a policy, goes on without an approval', async () => {
    const open = await checkDeployWindowOrRefuse('deploy', { config: frozen, environment: 'staging' }, { now, say: quiet });
    expect(open.decision?.allowed).toBe(true);
    expect(open.approval).toBeNull();
    const none = await checkDeployWindowOrRefuse('deploy', { config: frozen }, { context: 'kind-verdict', now, say: quiet });
    expect(none).toEqual({ decision: null, approval: null });
  });

  it('bad usage: an unknown environment, an empty reason, a bad config', async () => {
    await expect(
      checkDeployWindowOrRefuse('deploy', { config: frozen, environment: 'prod' }, { now, say: quiet }),
    ).rejects.toThrow(
      /no deploy window is configured for environment "prod" .*configured: production, staging\): add it to the config, or drop --environment/,
    );
    await expect(
      checkDeployWindowOrRefuse('deploy', { config: frozen, overrideWindow: '  ' }, { now, say: quiet }),
    ).rejects.toThrow(/--override-window needs a reason/);
    const bad = join(root, 'bad.yaml');
    writeFileSync(bad, 'deployWindows:\n  production:\n    timeZone: Mars/Olympus\n');
    await expect(checkDeployWindowOrRefuse('deploy', { config: bad }, { now, say: quiet })).rejects.toThrow(
      /deployWindows\.production\.timeZone: an IANA time zone name/,
    );
  });
});

describe('verdict deploy and verdict gate outside the window (no cluster needed)', () => {
  const deploy = ['deploy', '--overlay', 'gke', '--image', 'license-api:v2', '--kubeconfig', kubeconfig, '--config', frozen];
  const gate = (out: string) => [
    'gate',
    '--context',
    CONTEXT,
    '--kubeconfig',
    kubeconfig,
    '--deployment',
    'coditect/license-api',
    '--url',
    'http://127.0.0.1:9',
    '--config',
    frozen,
    '--out',
    out,
  ];

  it('deploy refuses with exit 64 and the next allowed time, before contacting the cluster', async () => {
    connections = 0;
    const r = await runCli(deploy);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^verdict: deploy refused: production is closed for deploys: frozen: release freeze for the test/);
    expect(r.stderr).toContain(nextText);
    expect(connections).toBe(0);
  });

  it('gate refuses likewise, writing no run directory', async () => {
    connections = 0;
    const out = join(root, 'gate-refused');
    const r = await runCli(gate(out));
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^verdict: gate refused: production is closed for deploys/);
    expect(connections).toBe(0);
    await expect(readRunRecord(join(out, 'latest'))).rejects.toThrow(/does not exist/);
  });

  it('--override-window proceeds (the cluster is contacted) and the gate records who and why in verdict.json', async () => {
    connections = 0;
    const d = await runCli([...deploy, '--override-window', 'hotfix INC-42'], { env: { GITHUB_ACTOR: 'octocat' } });
    expect(d.stderr).toMatch(/deploy window: production is closed .*OVERRIDDEN by octocat: hotfix INC-42/);
    expect(d.code).toBe(3); // the stand-in apiserver hangs up: the deploy itself fails, after the check
    expect(connections).toBeGreaterThan(0);

    const out = join(root, 'gate-overridden');
    const g = await runCli([...gate(out), '--override-window', 'hotfix INC-42'], { env: { GITHUB_ACTOR: 'octocat' } });
    expect(g.code).toBe(3);
    const rec = await readRunRecord(join(out, 'latest'));
    expect(rec.verdict).toBe('ERROR');
    expect(rec.approvals).toEqual([
      expect.objectContaining({
        what: 'deploy-window',
        by: 'octocat',
        reason: 'hotfix INC-42',
        detail: expect.stringContaining(nextText),
      }),
    ]);
    expect(g.stdout).toContain('approved (deploy-window): by octocat: hotfix INC-42');
  });
});
