import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startScratchControlPlane,
  type ScratchControlPlane,
} from '../../cluster/embedded/proxy/testing/scratch-control-plane.ts';
import { k8s, mergePatch } from '../../lib/kube/client.ts';
import { freePort } from '../../lib/net/free-port.ts';
import { history } from '../../lib/kube/rollout-history.ts';

// verdict history / rollback / pause / resume as a user runs them, against a real control plane
// (kube-embedded, no node agent: ReplicaSets and revisions exist, pods never become ready).

const verdict = resolve(import.meta.dirname, '../verdict.ts');
const NS = 'cli-rollout';
let cp: ScratchControlPlane | undefined;
let kubeconfig: string;
let context: string;
const dir = mkdtempSync(join(tmpdir(), 'verdict-rollout-cli-'));

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [verdict, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, KUBECONFIG: kubeconfig },
    });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

async function waitForRevision(kc: k8s.KubeConfig, n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await history(kc, NS, 'api')).some((r) => r.revision === n && r.current)) {
    if (Date.now() > deadline) throw new Error(`revision ${n} not reached`);
    await sleep(200);
  }
}

beforeAll(async () => {
  cp = await startScratchControlPlane();
  kubeconfig = cp.kubeconfigPath;
  context = cp.kubeConfig.getCurrentContext();
  const apps = cp.kubeConfig.makeApiClient(k8s.AppsV1Api);
  await cp.kubeConfig.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name: 'api' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'api' } },
        template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api', image: 'license-api:v1' }] } },
      },
    },
  });
  await waitForRevision(cp.kubeConfig, 1);
  await apps.patchNamespacedDeployment(
    {
      namespace: NS,
      name: 'api',
      body: {
        metadata: { annotations: { 'kubernetes.io/change-cause': 'deploy v2' } },
        spec: { template: { spec: { containers: [{ name: 'api', image: 'license-api:v2' }] } } },
      },
    },
    mergePatch,
  );
  await waitForRevision(cp.kubeConfig, 2);
}, 180_000);

afterAll(async () => {
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const dep = ['--deployment', `${NS}/api`];

describe('verdict history, rollback, pause, resume', () => {
  it('history prints the revisions, the current one marked; --json for machines', async () => {
    const r = await cli(['history', ...dep, '--context', context]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(
      /^deployment\.apps\/api\nREVISION +CHANGE-CAUSE +IMAGES +REPLICASET +READY\n1 +<none> +api=license-api:v1 +api-\w+ +0\/\d\n2 \(current\) +deploy v2 +api=license-api:v2 +api-\w+ +0\/\d\n$/,
    );
    const j = await cli(['history', ...dep, '--json']);
    expect(JSON.parse(j.stdout).map((x: { revision: number }) => x.revision)).toEqual([1, 2]);
  });

  it('rollback goes to the previous revision (0); an unknown revision is bad usage (64)', async () => {
    expect(await cli(['rollback', ...dep, '--to-revision', '9'])).toMatchObject({
      code: 64,
      stderr: `verdict rollback: unable to find specified revision 9 in history of deployment ${NS}/api (see the revisions with \`verdict history --deployment ${NS}/api\`)\n`,
    });
    const r = await cli(['rollback', ...dep]);
    expect(r).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^deployment\.apps\/api rolled back to revision 1 \(replicaset api-\w+\)\n$/),
    });
    await waitForRevision(cp!.kubeConfig, 3);
    expect(await cli(['rollback', ...dep, '--to-revision', '3'])).toMatchObject({
      code: 0,
      stdout: 'deployment.apps/api skipped rollback (current template already matches revision 3)\n',
    });
  });

  it('rollback --wait: a rollout that cannot finish (no node runs the pods) is ERROR (3) after the timeout', async () => {
    const r = await cli(['rollback', ...dep, '--wait', '--timeout', '2']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^deployment\.apps\/api rolled back to revision 2/);
    expect(r.stderr).toMatch(/verdict rollback: the rollback to revision 2 did not finish: timed out after 2 s: /);
  });

  it('pause, then rollback is refused (3) naming resume; pause twice and resume twice are errors as in kubectl', async () => {
    expect(await cli(['pause', ...dep])).toMatchObject({ code: 0, stdout: 'deployment.apps/api paused\n' });
    expect(await cli(['pause', ...dep])).toMatchObject({
      code: 3,
      stderr: 'verdict pause: deployments.apps "api" is already paused\n',
    });
    const refused = await cli(['rollback', ...dep]);
    expect(refused).toMatchObject({ code: 3, stdout: '' });
    expect(refused.stderr).toBe(
      `verdict rollback: you cannot rollback a paused deployment; resume it first with \`verdict resume --deployment ${NS}/api\` (kubectl rollout resume deployment/api) and try again\n`,
    );
    expect(await cli(['resume', ...dep])).toMatchObject({ code: 0, stdout: 'deployment.apps/api resumed\n' });
    expect(await cli(['resume', ...dep])).toMatchObject({
      code: 3,
      stderr: 'verdict resume: deployments.apps "api" is not paused\n',
    });
  });

  it('bad usage is 64 and says what to fix: no --deployment, no such Deployment, no such context', async () => {
    expect((await cli(['history'])).code).toBe(64);
    expect(await cli(['history', '--deployment', `${NS}/nope`])).toMatchObject({
      code: 64,
      stderr: `verdict history: deployment ${NS}/nope not found (check --deployment <namespace>/<name> and --context)\n`,
    });
    const r = await cli(['history', ...dep, '--context', 'nope']);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe(`verdict: context "nope" is not in ${kubeconfig} (its contexts: ${context}); check --context\n`);
  });

  it('an API server that does not answer is ERROR (3), naming the server and the flags', async () => {
    const down = join(dir, 'down.kubeconfig');
    const closed = await freePort(); // nothing listens there (fetch refuses some low ports outright)
    writeFileSync(
      down,
      readFileSync(kubeconfig, 'utf8').replace(/server: https:\/\/[^\s]+/, `server: https://127.0.0.1:${closed}`),
    );
    const r = await cli(['history', ...dep, '--kubeconfig', down]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^verdict history: cannot read deployment cli-rollout\/api: .*ECONNREFUSED.* \(is the API server at https:\/\/127\.0\.0\.1:\d+ up\? check --kubeconfig and --context\)\n$/,
    );
  });
});
