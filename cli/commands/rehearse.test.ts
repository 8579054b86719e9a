import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOURNEYS, journeyExperiments } from '../../experiments/rehearsals.ts';
import { readRunRecord } from '../../reports/run-directory.ts';
import { UsageError } from '../exit-codes.ts';
import { runCli } from '../testing/run-cli.ts';
import { parseFailedRate, splitRehearseArgs } from './rehearse.ts';

// `verdict rehearse` without a cluster: its usage, and that nothing is contacted, no load sent and
// no command run when a deploy window is closed or the context is not allowed. The runs on a cluster
// are experiments/rehearsals.cluster.test.ts.

let dir: string;
const day = 86_400_000;
const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** A loopback listener that counts connections (an apiserver or a Service that must not be contacted). */
async function recorder(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server: Server = createServer((s) => {
    n++;
    s.on('error', () => {});
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `127.0.0.1:${port}`, connections: () => n, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let apiserver: Awaited<ReturnType<typeof recorder>>;
let service: Awaited<ReturnType<typeof recorder>>;
let env: Record<string, string>;
const STAGING = 'gke_acme_us-central1-a_staging-gke';
const PROD = 'gke_acme_us-central1-a_Production';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-rehearse-cli-'));
  apiserver = await recorder();
  service = await recorder();
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: c, cluster: {server: "https://${apiserver.url}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: u, user: {token: x}}]',
      `contexts: [{name: ${STAGING}, context: {cluster: c, user: u}}, {name: ${PROD}, context: {cluster: c, user: u}}]`,
      `current-context: ${STAGING}`,
      '',
    ].join('\n'),
  );
  env = { KUBECONFIG: kubeconfig };
});
afterAll(async () => {
  await apiserver?.close();
  await service?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('verdict rehearse: usage (no cluster)', () => {
  it('--list names every rehearsal, its experiments, and observe mode', async () => {
    const r = await runCli(['rehearse', '--list']);
    expect(r.code).toBe(0);
    for (const j of JOURNEYS) expect(r.stdout).toContain(`${j.name.padEnd(16)} ${j.experiments.join(' + ')}`);
    expect(r.stdout).toMatch(/^all +every rehearsal above/m);
    expect(r.stdout).toMatch(/^-- <command> +any operation under load/m);
  });

  it('a wrong rehearsal, both a rehearsal and a command, neither, or an empty command: exit 64 naming the fix', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['rehearse', 'gke-upgrad'],
        /unknown rehearsal "gke-upgrad": the rehearsals are gke-upgrade, db-maintenance, key-rotation and all/,
      ],
      [['rehearse', 'gke-upgrade', '--', 'true'], /name a rehearsal or give a command after --, not both/],
      [['rehearse'], /name a rehearsal \(gke-upgrade, db-maintenance, key-rotation, all\) or give a command after --/],
      [['rehearse', '--'], /give the command to rehearse after --/],
      [['rehearse', 'gke-upgrade', 'key-rotation'], /name one rehearsal, not 2/],
      [['rehearse', '--allow-failed-rate', '150%', '--', 'true'], /--allow-failed-rate.*fraction of the requests from 0 to 1/],
      [['rehearse', 'gke-upgrade', '--outage', '0'], /--outage must be a number of seconds from 1 to 3600/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((r, i) => {
      expect({ args: cases[i][0], code: r.code }).toEqual({ args: cases[i][0], code: 64 });
      expect(r.stderr).toMatch(cases[i][1]);
    });
  });

  it('splits the rehearsal from the command at the first -- after "rehearse"; the command is never parsed as options', () => {
    const raw = (s: string) => ['node', 'verdict.ts', ...s.split(' ')];
    expect(
      splitRehearseArgs(raw('rehearse --target kind -- kubectl apply -f x.yaml --dry-run'), [
        'kubectl',
        'apply',
        '-f',
        'x.yaml',
        '--dry-run',
      ]),
    ).toEqual({
      journey: null,
      command: ['kubectl', 'apply', '-f', 'x.yaml', '--dry-run'],
    });
    expect(splitRehearseArgs(raw('rehearse gke-upgrade --rate 300'), ['gke-upgrade'])).toEqual({
      journey: 'gke-upgrade',
      command: [],
    });
    expect(() => splitRehearseArgs(raw('rehearse all --'), ['all'])).toThrow(UsageError);
    expect(parseFailedRate('0.001')).toBe(0.001);
    expect(parseFailedRate('0.1%')).toBeCloseTo(0.001);
    expect(() => parseFailedRate('-1')).toThrow(/fraction/);
  });

  it('a journey whose experiments are not in the build says which (until they land)', () => {
    expect(journeyExperiments('gke-upgrade', { 'control-plane-outage': 1, 'node-pool-upgrade': 1 })).toEqual([
      'control-plane-outage',
      'node-pool-upgrade',
    ]);
    expect(() => journeyExperiments('db-maintenance', { 'database-maintenance': 1 })).toThrow(
      /db-maintenance needs the experiments cache-failover, which this build of verdict does not have yet/,
    );
    expect(() => journeyExperiments('all', {})).toThrow(
      /all needs the experiments control-plane-outage, node-pool-upgrade, database-maintenance/,
    );
  });
});

describe('verdict rehearse refuses before any load, any connection and any command', () => {
  it('a production context in any letter case, or a context the config does not allow: exit 64, nothing contacted, the command not run', async () => {
    await writeFile(join(dir, 'verdict.config.yaml'), 'allowedContexts: ["gke_*"]\n');
    const ran = join(dir, 'ran');
    const svc = `http://${service.url}`;
    const prod = await runCli(['rehearse', '--target', `context:${PROD}`, '--url', svc, '--', 'touch', ran], { cwd: dir, env });
    expect(prod.code).toBe(64);
    expect(prod.stderr).toContain(`refusing to run experiments against context "${PROD}": it matches deniedContexts "*prod*"`);
    const other = await runCli(['rehearse', 'gke-upgrade', '--target', 'context:kind-dev', '--url', svc], { cwd: dir, env });
    expect(other.code).toBe(64);
    expect(other.stderr).toMatch(/not in allowedContexts \(verdict\.config\.yaml\)/);
    expect(existsSync(ran)).toBe(false);
    expect(apiserver.connections()).toBe(0);
    expect(service.connections()).toBe(0);
  });

  it('a closed deploy window refuses first; --override-window goes on (the cluster is contacted) and verdict.json records who and why', async () => {
    const config = join(dir, 'frozen.yaml');
    await writeFile(
      config,
      [
        'allowedContexts: ["gke_*_staging-*"]',
        'deployWindows:',
        '  staging:',
        '    timeZone: UTC',
        '    contexts: ["gke_*_staging-*"]',
        '    freezes:',
        `      - { from: ${date(Date.now() - day)}, to: ${date(Date.now() + day)}, reason: "freeze for the test" }`,
        '',
      ].join('\n'),
    );
    const ran = join(dir, 'ran-window');
    const args = ['rehearse', '--target', `context:${STAGING}`, '--url', `http://${service.url}`, '--config', config];
    const before = apiserver.connections();
    const refused = await runCli([...args, '--', 'touch', ran], { cwd: dir, env });
    expect(refused.code).toBe(64);
    expect(refused.stderr).toMatch(/^verdict: rehearse refused: staging is closed for deploys: frozen: freeze for the test/);
    expect(apiserver.connections()).toBe(before);
    const out = join(dir, 'out');
    const over = await runCli([...args, '--out', out, '--override-window', 'rehearsal for INC-7', '--', 'touch', ran], {
      cwd: dir,
      env: { ...env, GITHUB_ACTOR: 'octocat' },
    });
    expect(over.code).toBe(3); // the stand-in apiserver hangs up: the target cannot be opened
    expect(apiserver.connections()).toBeGreaterThan(before);
    expect(existsSync(ran)).toBe(false); // the command is the act: it never runs without a target
    const rec = await readRunRecord(join(out, 'latest'));
    expect(rec.command).toBe('rehearse');
    expect(rec.approvals).toEqual([
      expect.objectContaining({ what: 'deploy-window', by: 'octocat', reason: 'rehearsal for INC-7' }),
    ]);
  });
});
