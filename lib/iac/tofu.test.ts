/**
 * A real OpenTofu (scripts/tofu.sh: v1.12.6 built from the Go module proxy, cached) on a small
 * configuration that needs no provider download: built-in `terraform_data` resources and a local
 * state in a temporary directory. `tofu init`, `plan -out`, `apply`, a second plan that replaces,
 * destroys and updates, and `show -json`: what OpenTofu really emits, classified and judged.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runCli as cli } from '../../cli/testing/run-cli.ts';
import { readRunRecord } from '../../reports/run-directory.ts';
import { classifyPlan, effectiveRules, planRiskConfigSchema } from '../policy/plan-risk.ts';
import { parsePlanJson, readPlan } from './plan.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'verdict-tofu-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// This machine's environment names a CLI config file that does not exist (tofu then warns on every
// command): give tofu an empty one, and nothing else from outside.
const cliConfig = join(dir, 'tofurc');
writeFileSync(cliConfig, '');
const env = { ...process.env, TF_CLI_CONFIG_FILE: cliConfig, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' };
let tofu = '';
const run = (...args: string[]) => execFileSync(tofu, args, { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });

// The database and the cache stand in for Cloud SQL and Memorystore: the default rules know only the
// Google types, so the project's own rules (data, in verdict.config.yaml) name them.
const CONFIG = `planRisk:
  rules:
    - id: database-stand-in
      risk: high
      addresses: ["terraform_data.database"]
      actions: [replace, delete]
      why: stands in for the Cloud SQL instance
    - id: cache-stand-in
      risk: medium
      addresses: ["terraform_data.cache*"]
      actions: [replace, delete]
      why: stands in for Memorystore
`;

beforeAll(() => {
  // Builds it on first use (about 10 minutes on 2 cores); afterwards the cached binary.
  tofu = execFileSync(join(ROOT, 'scripts', 'tofu.sh'), {
    encoding: 'utf8',
    timeout: 40 * 60_000,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .at(-1)!;
  writeFileSync(
    join(dir, 'main.tf'),
    `variable "db_version" {
  type = string
}
variable "with_cache" {
  type = bool
}
variable "team" {
  type = string
}
resource "terraform_data" "database" {
  input            = { version = var.db_version }
  triggers_replace = [var.db_version]
}
resource "terraform_data" "cache" {
  count = var.with_cache ? 1 : 0
  input = "redis"
}
resource "terraform_data" "labels" {
  input = { team = var.team }
}
`,
  );
  writeFileSync(join(dir, 'verdict.config.yaml'), CONFIG);
  run('init', '-input=false', '-no-color');
}, 45 * 60_000);

const rules = () => effectiveRules(planRiskConfigSchema.parse(parseYaml(CONFIG).planRisk));

describe('a real tofu plan', () => {
  it('is the version scripts/tofu.sh pins', () => {
    expect(run('version', '-json')).toMatch(/"terraform_version":\s*"1\.12\.6"/);
  });

  it('creates: every change is a low-risk create, PASS', async () => {
    run(
      'plan',
      '-input=false',
      '-no-color',
      '-out=create.tfplan',
      '-var',
      'db_version=16',
      '-var',
      'with_cache=true',
      '-var',
      'team=a',
    );
    const { plan, via } = await readPlan(join(dir, 'create.tfplan'), { tofu, env });
    expect(via).toMatch(/^tofu show -json/);
    expect(plan.format_version).toBe('1.2');
    expect(plan.terraform_version).toBe('1.12.6');
    const k = classifyPlan(plan, rules());
    expect(k.changes.map((c) => [c.address, c.kind, c.risk])).toEqual([
      ['terraform_data.cache[0]', 'create', 'low'],
      ['terraform_data.database', 'create', 'low'],
      ['terraform_data.labels', 'create', 'low'],
    ]);
    const r = await cli(
      [
        'plan-risk',
        join(dir, 'create.tfplan'),
        '--tofu',
        tofu,
        '--config',
        join(dir, 'verdict.config.yaml'),
        '--out',
        join(dir, 'out'),
      ],
      {
        env,
      },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    run('apply', '-input=false', '-no-color', '-auto-approve', 'create.tfplan');
  });

  it('replace, destroy and update: the replace is high (FAIL), the destroy medium, the update low; approved, PASS', async () => {
    run(
      'plan',
      '-input=false',
      '-no-color',
      '-out=change.tfplan',
      '-var',
      'db_version=17',
      '-var',
      'with_cache=false',
      '-var',
      'team=b',
    );
    const json = run('show', '-json', 'change.tfplan');
    writeFileSync(join(dir, 'change.json'), json);
    const plan = parsePlanJson(json, 'change.json');
    // What OpenTofu 1.12 emits for each, as the fixtures of lib/policy/testdata assume.
    const raw = Object.fromEntries(plan.resource_changes!.map((rc) => [rc.address, rc]));
    expect(raw['terraform_data.database'].change.actions).toEqual(['delete', 'create']);
    expect(raw['terraform_data.database'].change.replace_paths).toEqual([['triggers_replace']]);
    expect(raw['terraform_data.database'].action_reason).toBe('replace_because_cannot_update');
    expect(raw['terraform_data.cache[0]'].change.actions).toEqual(['delete']);
    expect(raw['terraform_data.cache[0]'].change.after).toBeNull();
    expect(raw['terraform_data.cache[0]'].action_reason).toBe('delete_because_count_index');
    expect(raw['terraform_data.labels'].change.actions).toEqual(['update']);

    const k = classifyPlan(plan, rules());
    expect(k.changes.map((c) => [c.address, c.kind, c.risk, c.rules.map((r) => r.id).join(',')])).toEqual([
      ['terraform_data.database', 'replace', 'high', 'database-stand-in'],
      ['terraform_data.cache[0]', 'delete', 'medium', 'cache-stand-in'],
      ['terraform_data.labels', 'update', 'low', ''],
    ]);
    expect(k.changes[0].replacePaths).toEqual(['triggers_replace']);
    expect(k.changes[2].changedPaths).toEqual(['input.team', 'output', 'output.team']); // output: known only after apply
    // The defaults alone know no terraform_data: everything low (the rules are the project's data).
    expect(classifyPlan(plan).changes.every((c) => c.risk === 'low')).toBe(true);

    // The binary plan and its JSON give the same verdict through the CLI.
    const common = ['--tofu', tofu, '--config', join(dir, 'verdict.config.yaml'), '--out', join(dir, 'out')];
    const bin = await cli(['plan-risk', join(dir, 'change.tfplan'), ...common], { env });
    expect(bin.code).toBe(1);
    expect(bin.stdout).toMatch(
      /^FAIL {2}1 high-risk change without approval \(replace terraform_data\.database\); 3 changes \(1 high, 1 medium, 1 low\)/,
    );
    const fromJson = await cli(['plan-risk', join(dir, 'change.json'), ...common], { env });
    expect(fromJson.code).toBe(1);
    const approved = await cli(['plan-risk', join(dir, 'change.tfplan'), ...common, '--approved-by', 'jane'], { env });
    expect(approved.code).toBe(0);
    const rec = await readRunRecord(join(dir, 'out', 'latest'));
    expect(rec.approvals?.[0]).toMatchObject({ what: 'plan-risk', by: 'jane' });
    expect(rec.checks[0].description).toMatch(/plan format 1\.2, read with tofu show -json/);
    expect(rec.app?.versions).toEqual({ tofu: '1.12.6' });
    run('apply', '-input=false', '-no-color', '-auto-approve', 'change.tfplan');
  });

  it('destroy everything: the database delete is high', async () => {
    run(
      'plan',
      '-destroy',
      '-input=false',
      '-no-color',
      '-out=destroy.tfplan',
      '-var',
      'db_version=17',
      '-var',
      'with_cache=false',
      '-var',
      'team=b',
    );
    const k = classifyPlan((await readPlan(join(dir, 'destroy.tfplan'), { tofu, env })).plan, rules());
    expect(k.changes.map((c) => [c.address, c.kind, c.risk])).toEqual([
      ['terraform_data.database', 'delete', 'high'],
      ['terraform_data.labels', 'delete', 'low'],
    ]);
  });

  it('a plan that changes nothing: PASS with a note', async () => {
    run(
      'plan',
      '-input=false',
      '-no-color',
      '-out=same.tfplan',
      '-var',
      'db_version=17',
      '-var',
      'with_cache=false',
      '-var',
      'team=b',
    );
    const r = await cli(['plan-risk', join(dir, 'same.tfplan'), '--tofu', tofu, '--out', join(dir, 'out')], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PASS {2}the plan changes nothing \(2 unchanged resources\)/);
  });

  it('a binary plan tofu cannot read is ERROR (exit 3) with what tofu said, never PASS', async () => {
    const broken = join(dir, 'broken.tfplan');
    writeFileSync(broken, Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(64, 7)])); // zip magic, then junk
    const r = await cli(['plan-risk', broken, '--tofu', tofu, '--out', join(dir, 'out')], { env });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^ERROR {2}tofu could not read the plan .*broken\.tfplan/);
    expect((await readRunRecord(join(dir, 'out', 'latest'))).error).toMatch(/failed \(exit 1\)/);
  });

  it('a binary plan without any tofu: exit 64 naming scripts/tofu.sh', async () => {
    const r = await cli(['plan-risk', join(dir, 'same.tfplan'), '--out', join(dir, 'out')], {
      env: { ...env, PATH: '/nonexistent', VERDICT_CACHE: join(dir, 'no-cache') },
    });
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/is a binary plan, and reading it needs tofu: none was found .*scripts\/tofu\.sh/);
  });

  it("the repository's opentofu/ layout is tofu fmt-clean, and both environments use the module", () => {
    const fmt = execFileSync(tofu, ['fmt', '-check', '-recursive', '-diff', join(ROOT, 'opentofu')], { env, encoding: 'utf8' });
    expect(fmt).toBe('');
    for (const e of ['staging', 'production']) {
      const main = readFileSync(join(ROOT, 'opentofu', 'environments', e, 'main.tf'), 'utf8');
      expect(main).toContain('source = "../../modules/license-platform"');
      expect(main).toContain(`environment = "${e}"`);
    }
    // fmt -check can fail: a badly indented copy is reported.
    const bad = join(dir, 'bad-fmt');
    execFileSync('mkdir', ['-p', bad]);
    writeFileSync(join(bad, 'x.tf'), 'resource "terraform_data" "x" {\ninput = 1\n}\n');
    expect(() => execFileSync(tofu, ['fmt', '-check', bad], { env, stdio: 'pipe' })).toThrow();
  });

  it('the state file is in the temporary directory, never elsewhere', () => {
    expect(
      JSON.parse(readFileSync(join(dir, 'terraform.tfstate'), 'utf8'))
        .resources.map((r: { name: string }) => r.name)
        .sort(),
    ).toEqual(['database', 'labels']);
  });
});
