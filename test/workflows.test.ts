import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { harnessConfigSchema } from '../experiments/config.ts';
import { shellcheckVersion } from './shell-scripts.ts';

// The GitHub workflows: every file passes actionlint (pinned, built by scripts/actionlint.sh, with
// shellcheck on the run: scripts), every action is pinned to a full commit SHA or an explicit major,
// and the production pipeline keeps the properties the seed and its successors need.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIR = join(ROOT, '.github', 'workflows');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join(DIR, f));
const actionlint = execFileSync(join(ROOT, 'scripts', 'actionlint.sh'), { encoding: 'utf8' })
  .trim()
  .split('\n')
  .at(-1)!;
const tmp = mkdtempSync(join(tmpdir(), 'verdict-workflows-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// actionlint runs shellcheck only when it finds one, and says nothing when it does not: name it, so
// that a machine without it fails here instead of passing without the shell checks.
function lint(paths: string[]): { ok: boolean; out: string } {
  shellcheckVersion();
  const r = spawnSync(actionlint, ['-no-color', '-shellcheck=shellcheck', ...paths], { encoding: 'utf8', cwd: ROOT });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** Every `uses:` of a workflow, with the problem if its pin is not a full SHA or an explicit major. */
function pinProblems(text: string): string[] {
  const problems: string[] = [];
  for (const m of text.matchAll(/^\s*(?:-\s*)?uses:\s*['"]?([^'"\s#]+)/gm)) {
    const ref = m[1];
    if (ref.startsWith('./')) continue; // a reusable workflow of this repository
    const at = ref.lastIndexOf('@');
    const version = at > 0 ? ref.slice(at + 1) : '';
    if (/^[0-9a-f]{40}$/.test(version) || /^v\d+$/.test(version)) continue;
    problems.push(`${ref}: pin to a full commit SHA or an explicit major (@v4), not "${version || '(none)'}"`);
  }
  return problems;
}

const load = (name: string) => parse(readFileSync(join(DIR, name), 'utf8'));

describe('GitHub workflows', () => {
  it('are the ones the project needs', () => {
    expect(files.map((f) => f.split('/').at(-1)!).sort()).toEqual([
      'chaos-rehearsal.yml',
      'ci.yml',
      'deploy-production.yml',
      'infrastructure.yml',
      'scheduled-smoke.yml',
      'tofu-plan.yml',
    ]);
  });

  it('pass actionlint (with shellcheck on every run: script)', () => {
    const r = lint(files);
    expect(r.out).toBe('');
    expect(r.ok).toBe(true);
    // The check can fail: an unknown key, a bad expression and a shell bug (shellcheck's) are all reported.
    const bad = join(tmp, 'bad.yml');
    writeFileSync(
      bad,
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n      - run: cd $DIR && ls\n        shell: bash\n        timeout: 3\n',
    );
    const b = lint([bad]);
    expect(b.ok).toBe(false);
    expect(b.out).toMatch(/nope/);
    expect(b.out).toMatch(/timeout/);
    expect(b.out).toMatch(/bad\.yml:7:9: shellcheck reported issue in this script: SC2086:/);
  });

  it('pin every action to a full commit SHA or an explicit major', () => {
    for (const f of files) expect(pinProblems(readFileSync(f, 'utf8')), f).toEqual([]);
    expect(
      pinProblems(
        'steps:\n  - uses: actions/checkout@main\n  - uses: foo/bar@v1.2.3\n  - uses: a/b\n  - uses: a/c@0123456789abcdef0123456789abcdef01234567\n  - uses: a/d@v4\n',
      ),
    ).toEqual([
      expect.stringMatching(/actions\/checkout@main/),
      expect.stringMatching(/foo\/bar@v1\.2\.3/),
      expect.stringMatching(/a\/b: .*\(none\)/),
    ]);
  });

  it("deploy-production: tests first, Artifact Registry with Workload Identity Federation, the seed's tag, one deploy at a time, a gate that rolls back", () => {
    const text = readFileSync(join(DIR, 'deploy-production.yml'), 'utf8');
    const w = load('deploy-production.yml');
    expect(w.permissions['id-token']).toBe('write');
    expect(text).not.toMatch(/credentials_json|GCP_SA_KEY|gcr\.io/);
    expect(w.env.IMAGE).toMatch(/^[a-z0-9-]+-docker\.pkg\.dev\//);
    expect(w.concurrency).toEqual({ group: 'deploy-production', 'cancel-in-progress': false });
    expect(w.jobs['build-and-push'].needs).toBe('test');
    expect(w.jobs.test.uses).toBe('./.github/workflows/ci.yml');
    expect(w.jobs.deploy.environment.name).toBe('production');
    expect(text).toContain('tag=v1.0.${GITHUB_RUN_NUMBER}-${GITHUB_SHA::7}');
    const steps = w.jobs.deploy.steps.map((s: { run?: string }) => s.run ?? '').join('\n');
    expect(steps).toMatch(/verdict deploy --overlay gke --image "\$\{IMAGE\}:\$\{TAG\}" --no-wait/);
    expect(steps).toMatch(/verdict gate[\s\S]*--expect-version "\$\{TAG\}"/);
    expect(steps).not.toMatch(/kubectl set image|--record/);
  });

  it("deploy-production: the gate watches the seed's 30 minutes with an early stop, its Google sources named with the project, within the job's time", () => {
    const w = load('deploy-production.yml');
    const gateStep = w.jobs.deploy.steps.map((s: { run?: string }) => s.run ?? '').find((r: string) => /verdict gate/.test(r))!;
    const minutes = (flag: string) => Number(/(\d+)m\b/.exec(new RegExp(`${flag} (\\S+)`).exec(gateStep)![1])![1]);
    expect(minutes('--window')).toBeGreaterThanOrEqual(30);
    expect(gateStep).toMatch(/--look-every 1m/);
    // A Google source without --project is bad usage (exit 64): the gate would never judge anything.
    if (/--source (gmp|cloud-monitoring)/.test(gateStep)) expect(gateStep).toMatch(/--project "?\$\{?PROJECT_ID/);
    // The job outlives the rollout wait, the window and a rollback wait.
    expect(w.jobs.deploy['timeout-minutes']).toBeGreaterThanOrEqual(minutes('--timeout') * 2 + minutes('--window') + 5);
  });

  it('deploy-production: inside the deploy window (or overridden with a reason), the gate notifies Slack itself, no Slack action', () => {
    const text = readFileSync(join(DIR, 'deploy-production.yml'), 'utf8');
    const w = load('deploy-production.yml');
    const steps = w.jobs.deploy.steps.map((s: { run?: string }) => s.run ?? '').join('\n');
    expect(steps).toMatch(/verdict deploy [\s\S]*--environment production --config \.github\/release-policy\.config\.yaml/);
    expect(steps).toMatch(/verdict gate[\s\S]*--environment production --config \.github\/release-policy\.config\.yaml/);
    expect(steps.match(/\$\{OVERRIDE_WINDOW:\+--override-window "\$OVERRIDE_WINDOW"\}/g)).toHaveLength(2);
    expect(steps).toMatch(/verdict gate[\s\S]*--notify slack:SLACK_WEBHOOK --report-url "\$RUN_URL"/);
    expect(w.on.workflow_dispatch.inputs['override-window'].required).toBe(false);
    expect(text).not.toMatch(/action-slack|slackapi\/|curl [^\n]*SLACK_WEBHOOK/);
    // The policy file the workflows read is a valid config with production's windows.
    const policy = parse(readFileSync(join(ROOT, '.github', 'release-policy.config.yaml'), 'utf8'));
    expect(harnessConfigSchema.parse(policy).deployWindows.production.windows.length).toBeGreaterThan(0);
  });

  it('chaos-rehearsal refuses production before anything else', () => {
    const w = load('chaos-rehearsal.yml');
    const first = w.jobs.rehearse.steps[0];
    expect(first.name).toBe('Refuse production');
    const guard = (context: string, cluster: string) =>
      spawnSync('bash', ['-c', first.run], { env: { ...process.env, CONTEXT: context, CLUSTER: cluster }, encoding: 'utf8' })
        .status;
    expect(guard('gke_acme_us-central1_prod-1', 'x')).toBe(1);
    expect(guard('staging', 'Production-GKE')).toBe(1);
    expect(guard('gke_coditect-cloud-infra_us-central1-a_staging-gke-cluster', 'staging-gke-cluster')).toBe(0);
    const config = parse(readFileSync(join(ROOT, '.github', 'chaos-rehearsal.config.yaml'), 'utf8'));
    expect(config.deniedContexts).toContain('*prod*');
  });

  it('chaos-rehearsal: with a command, verdict rehearse runs it under load (observe mode); without, the experiments', () => {
    const steps = load('chaos-rehearsal.yml').jobs.rehearse.steps as Array<{ name?: string; if?: string; run?: string }>;
    const observe = steps.find((s) => s.name === 'Rehearse the operation under load')!;
    expect(observe.if).toBe("inputs.command != ''");
    expect(observe.run).toMatch(/npx verdict rehearse --target "context:\$\{CONTEXT\}" .*--allow-failed-rate "\$ALLOW"/s);
    expect(observe.run).toMatch(/ -- "\$\{argv\[@\]\}"$/m);
    expect(steps.find((s) => s.name === 'Run the experiments')!.if).toBe("inputs.command == ''");
  });

  it('scheduled-smoke: read-only on every run, one issue for failures', () => {
    const text = readFileSync(join(DIR, 'scheduled-smoke.yml'), 'utf8');
    expect(text).toMatch(/verdict smoke --url "\$\{SERVICE_URL\}" --read-only/);
    expect(text).toMatch(/gh issue list --label "\$\{ISSUE_LABEL\}" --state open/);
    expect(load('scheduled-smoke.yml').permissions.issues).toBe('write');
  });

  it("infrastructure: fmt, then each environment's plan judged by plan-risk; applied on main only, a high-risk production plan only through the production environment", () => {
    const w = load('infrastructure.yml');
    const text = readFileSync(join(DIR, 'infrastructure.yml'), 'utf8');
    expect(Object.keys(w.on)).toEqual(['pull_request', 'push', 'workflow_dispatch']);
    expect(w.on.pull_request.paths).toContain('opentofu/**');
    expect(w.concurrency['cancel-in-progress']).toBe(false);
    expect(w.jobs.fmt.steps.at(-1).run).toMatch(/fmt -check -recursive -diff opentofu/);
    for (const e of ['staging', 'production']) {
      expect(w.jobs[`plan-${e}`]).toMatchObject({
        needs: 'fmt',
        uses: './.github/workflows/tofu-plan.yml',
        with: { environment: e },
      });
    }
    const apply = w.jobs.apply;
    expect(apply.if).toBe("github.event_name != 'pull_request' && github.ref == 'refs/heads/main'");
    expect(apply.strategy).toMatchObject({
      'max-parallel': 1,
      'fail-fast': true,
      matrix: { environment: ['staging', 'production'] },
    });
    // The environment the job waits in: production (required reviewers) exactly when the production plan is high-risk.
    expect(apply.environment.name).toBe(
      "${{ matrix.environment == 'staging' && 'staging' || (needs.plan-production.outputs.risk == 'high' && 'production' || 'production-low-risk') }}",
    );
    const runs = apply.steps.map((s: { run?: string; name?: string }) => s.run ?? '').join('\n');
    expect(runs).toMatch(/--approved-by "\$\{approver\} \(production environment, run \$\{GITHUB_RUN_ID\}\)"/);
    expect(runs).toMatch(/tofu apply -no-color -lock-timeout=5m tfplan/);
    // The apply is the judged plan (downloaded), after plan-risk passed, and before the seed's verification.
    const names = apply.steps.map((s: { name?: string; uses?: string }) => s.name ?? s.uses);
    expect(names.indexOf('actions/download-artifact@v4')).toBeLessThan(names.indexOf('Plan risk, with the approval'));
    expect(names.indexOf('Plan risk, with the approval')).toBeLessThan(names.indexOf('tofu apply tfplan'));
    expect(names.indexOf('tofu apply tfplan')).toBeLessThan(names.indexOf('Verify'));
    expect(runs).toMatch(/gcloud container clusters list[\s\S]*gcloud sql instances list[\s\S]*kubectl get nodes/);
    expect(text).not.toMatch(/credentials_json|GCP_SA_KEY|-auto-approve/);
  });

  it('tofu-plan: plan -out, plan-risk with the risk as the output, the plan JSON never kept, the plan file encrypted', () => {
    const w = load('tofu-plan.yml');
    const job = w.jobs.plan;
    expect(w.on.workflow_call.outputs.risk.value).toBe('${{ jobs.plan.outputs.risk }}');
    expect(job.env.TF_ENCRYPTION).toMatch(/key_provider "gcp_kms" "plan"[\s\S]*plan \{\s*method = method\.aes_gcm\.plan/);
    const step = job.steps.find((s: { name?: string }) => s.name === 'Plan risk');
    expect(step.run).toMatch(/tofu show -json tfplan > "\$RUNNER_TEMP\/plan\.json"/);
    expect(step.run).toMatch(/npx verdict plan-risk "\$RUNNER_TEMP\/plan\.json"/);
    expect(step.run).toMatch(/rm -f "\$RUNNER_TEMP\/plan\.json"/);
    // The step's decision, run as bash: exit 1 of plan-risk is risk=high (and the job goes on), 3 fails it.
    const decide = (code: number) => {
      const out = join(tmp, `out-${code}`);
      writeFileSync(out, '');
      const script = step.run
        .replace(/^tofu show .*$/m, ':')
        .replace(/\(cd "\$GITHUB_WORKSPACE" && npx verdict plan-risk[\s\S]*?\)\n/, `(exit ${code})\n`);
      const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
        env: { ...process.env, GITHUB_OUTPUT: out, RUNNER_TEMP: tmp, ENVIRONMENT: 'production' },
        encoding: 'utf8',
      });
      return { status: r.status, output: readFileSync(out, 'utf8') };
    };
    expect(decide(0)).toEqual({ status: 0, output: 'risk=none\n' });
    expect(decide(1)).toEqual({ status: 0, output: 'risk=high\n' });
    expect(decide(3).status).toBe(3);
    expect(decide(64).status).toBe(64);
    const upload = job.steps.find((s: { uses?: string }) => s.uses === 'actions/upload-artifact@v4');
    expect(upload.with.path).not.toMatch(/plan\.json/);
  });
});
