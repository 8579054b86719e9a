import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRunRecord } from '../../reports/run-directory.ts';
import { runCli } from '../testing/run-cli.ts';

const DATA = resolve(import.meta.dirname, '../../lib/policy/testdata');
const root = mkdtempSync(join(tmpdir(), 'verdict-plan-risk-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const cli = runCli;

/** Runs plan-risk on a fixture into a fresh --out; returns the result and the run directory (null when none). */
async function planRisk(file: string, extra: string[] = [], o: { stdin?: string } = {}) {
  const out = join(root, `out-${++n}`);
  const r = await cli(['plan-risk', file === '-' ? '-' : join(DATA, file), '--out', out, ...extra], o);
  const dir = existsSync(join(out, 'latest')) ? join(out, 'latest') : null;
  return { ...r, dir, out };
}

const SECRETS = /must-never-leak|c2EtcHJpdmF0ZS1rZXktbXVzdC1uZXZlci1sZWFr/;

describe('verdict plan-risk on plan JSON', () => {
  it('FAILs a plan that replaces the Cloud SQL instance: exit 1, a valid verdict/v1 run directory, the change in the summary', async () => {
    const r = await planRisk('sql-instance-replace.json');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^FAIL {2}1 high-risk change without approval \(replace module\.database\.google_sql_database_instance\.main\)/,
    );
    const rec = await readRunRecord(r.dir!); // validated against the schema
    expect(rec.command).toBe('plan-risk');
    expect(rec.target).toMatchObject({ kind: 'plan', name: 'sql-instance-replace.json' });
    expect(rec.checks.map((c) => [c.name, c.kind, c.verdict])).toEqual([['high-risk changes', 'plan', 'FAIL']]);
    expect(rec.checks[0].gates[0].observed).toMatchObject({
      risk: 'high',
      action: 'replace',
      replace_paths: 'name',
      approved_by: null,
    });
    expect(rec.approvals).toBeUndefined();
    const summary = readFileSync(join(r.dir!, 'summary.md'), 'utf8');
    expect(summary).toContain('### ❌ high-risk changes (plan): FAIL');
    expect(summary).toMatch(
      /\| module\.database\.google\\_sql\\_database\\_instance\.main \| ❌ FAIL \| HIGH: replace google\\_sql\\_database\\_instance/,
    );
    expect(readFileSync(join(r.dir!, 'junit.xml'), 'utf8')).toMatch(
      /<testcase [^>]*name="module\.database\.google_sql_database_instance\.main"[^>]*>\s*<failure/,
    );
    expect(readFileSync(join(r.dir!, 'report.html'), 'utf8')).toContain('high-risk changes');
  });

  it('--approved-by turns it into PASS and records who', async () => {
    const r = await planRisk('sql-instance-replace.json', ['--approved-by', 'jane (CHG-1234)']);
    expect(r.code).toBe(0);
    const rec = await readRunRecord(r.dir!);
    expect(rec.headline).toMatch(/^PASS: 1 high-risk change approved by jane \(CHG-1234\)/);
    expect(rec.approvals).toEqual([
      expect.objectContaining({
        what: 'plan-risk',
        by: 'jane (CHG-1234)',
        detail: expect.stringMatching(/^1 high-risk and 0 medium-risk changes/),
      }),
    ]);
    expect(rec.checks[0].gates.map((g) => [g.name, g.verdict])).toEqual([
      ['module.database.google_sql_database_instance.main', 'PASS'],
      ['approval', 'PASS'],
    ]);
    expect(r.stdout).toContain('approved (plan-risk): by jane (CHG-1234)');
  });

  it.each([
    'sql-instance-tier.json',
    'gke-cluster-min-master-version.json',
    'gke-node-pool-version.json',
    'firewall-update.json',
    'kms-key-destroy.json',
    'secret-destroy.json',
    'service-account-key-delete.json',
  ])('%s: FAIL without approval', async (file) => {
    const r = await planRisk(file);
    expect(r.code).toBe(1);
    expect((await readRunRecord(r.dir!)).checks[0].gates.every((g) => g.verdict === 'FAIL' && g.observed.risk === 'high')).toBe(
      true,
    );
  });

  it('PASSes a labels-only plan, and an empty one with a note', async () => {
    const labels = await planRisk('labels-only.json');
    expect(labels.code).toBe(0);
    const rec = await readRunRecord(labels.dir!);
    expect(rec.checks.map((c) => [c.name, c.verdict, c.gates.length])).toEqual([
      ['high-risk changes', 'PASS', 1],
      ['other changes', 'PASS', 3],
    ]);
    expect(rec.headline).toBe(
      'PASS: 3 changes (0 high, 0 medium, 3 low); 1 unchanged resource, 1 data source read; nothing needs an approval',
    );
    const empty = await planRisk('empty.json');
    expect(empty.code).toBe(0);
    expect((await readRunRecord(empty.dir!)).headline).toBe('PASS: the plan changes nothing');
  });

  it('a stateful destroy is listed as medium and PASSes by default; failOn: medium in the config makes it need approval', async () => {
    const r = await planRisk('stateful-destroy.json');
    expect(r.code).toBe(0);
    expect((await readRunRecord(r.dir!)).checks.map((c) => c.name)).toEqual([
      'high-risk changes',
      'stateful destroy or replace',
      'other changes',
    ]);
    const cfg = join(root, 'failon.yaml');
    writeFileSync(cfg, 'planRisk:\n  failOn: medium\n');
    const strict = await planRisk('stateful-destroy.json', ['--config', cfg]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(
      /^FAIL {2}1 change of medium or high risk without approval \(delete google_storage_bucket\.reports\)/,
    );
  });

  it('an errored plan is ERROR (exit 3), never PASS', async () => {
    const r = await planRisk('errored.json');
    expect(r.code).toBe(3);
    expect((await readRunRecord(r.dir!)).checks[0].gates[0].evidence).toMatch(/errored: true: planning stopped with an error/);
  });

  it('reads the JSON from stdin', async () => {
    const r = await planRisk('-', [], { stdin: readFileSync(join(DATA, 'kms-key-destroy.json'), 'utf8') });
    expect(r.code).toBe(1);
    expect((await readRunRecord(r.dir!)).target.name).toBe('stdin');
  });

  it('never writes a sensitive value of the plan anywhere', async () => {
    for (const f of ['sql-instance-replace.json', 'secret-destroy.json', 'service-account-key-delete.json']) {
      const r = await planRisk(f, ['--json']);
      expect(r.stdout + r.stderr).not.toMatch(SECRETS);
      for (const file of readdirSync(r.dir!))
        expect(readFileSync(join(r.dir!, file), 'utf8'), `${f}: ${file}`).not.toMatch(SECRETS);
    }
    expect(readFileSync(join(DATA, 'secret-destroy.json'), 'utf8')).toMatch(SECRETS); // the markers are there to be missed
  });

  it.each([
    ['format-2.json', [], /plan format_version "2\.0" is not supported/],
    ['nope.json', [], /nope\.json does not exist/],
    ['README.md', [], /README\.md is not JSON/],
    ['empty.json', ['--approved-by', ' '], /--approved-by needs who approved/],
  ])('bad input %s: exit 64, a message that names the fix, no run directory', async (file, extra, message) => {
    const r = await planRisk(file, extra);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(r.dir).toBeNull();
  });

  it('a bad rule in verdict.config.yaml is refused naming the field', async () => {
    const cfg = join(root, 'bad.yaml');
    writeFileSync(cfg, 'planRisk:\n  rules:\n    - { id: x, risk: severe, types: [a], why: y }\n');
    const r = await planRisk('empty.json', ['--config', cfg]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/planRisk\.rules\.0\.risk: /);
  });
});
