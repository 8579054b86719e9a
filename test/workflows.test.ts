import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
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
  it('are the four the project needs', () => {
    expect(files.map((f) => f.split('/').at(-1)).sort()).toEqual([
      'chaos-rehearsal.yml',
      'ci.yml',
      'deploy-production.yml',
      'scheduled-smoke.yml',
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

  it('scheduled-smoke: read-only on every run, one issue for failures', () => {
    const text = readFileSync(join(DIR, 'scheduled-smoke.yml'), 'utf8');
    expect(text).toMatch(/verdict smoke --url "\$\{SERVICE_URL\}" --read-only/);
    expect(text).toMatch(/gh issue list --label "\$\{ISSUE_LABEL\}" --state open/);
    expect(load('scheduled-smoke.yml').permissions.issues).toBe('write');
  });
});
