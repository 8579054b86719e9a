import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readLedger, readLedgerLines, type LedgerLine } from './ledger-file.ts';
import { InvalidRunRecordError, validateRunRecord } from './render/json.ts';
import {
  NotARunDirectoryError,
  UnreadableRunError,
  createRunDirectory,
  renderRunDirectory,
  runStamp,
  writeRun,
} from './run-directory.ts';
import { RENDERERS } from './render/index.ts';
import type { FailureCause, RunRecord } from './run-record.ts';
import {
  errorRun,
  everyCauseRun,
  longRun,
  noRequestsRun,
  podKillRun,
  rolloutPassRun,
  type SyntheticRun,
} from './testing/synthetic.ts';

const root = mkdtempSync(join(tmpdir(), 'verdict-rundir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const NOW = new Date(Date.UTC(2026, 2, 3, 14, 0, 7, 250));
let n = 0;
const fresh = () => join(root, `out-${++n}`);

function xmllintOk(file: string): boolean {
  const r = spawnSync('xmllint', ['--noout', '--schema', new URL('./schema/junit.xsd', import.meta.url).pathname, file], {
    encoding: 'utf8',
  });
  if (r.error) throw new Error('xmllint is missing: apt-get install libxml2-utils (scripts/setup-deps.sh)');
  return r.status === 0;
}

/** Recomputes, from the ledger alone, what the record says about each check's requests and failures. */
async function recompute(dir: string) {
  const perCheck = new Map<
    string,
    { total: number; failed: number; dropped: number; causes: Partial<Record<FailureCause, number>> }
  >();
  for await (const l of readLedger(dir)) {
    const key = l.check ?? '';
    let c = perCheck.get(key);
    if (!c) perCheck.set(key, (c = { total: 0, failed: 0, dropped: 0, causes: {} }));
    if (l.outcome === 'dropped') {
      c.dropped++;
      continue;
    }
    c.total++;
    if (l.outcome === 'failed') {
      c.failed++;
      c.causes[l.cause!] = (c.causes[l.cause!] ?? 0) + 1;
    }
  }
  return perCheck;
}

describe('createRunDirectory', () => {
  it('makes <out>/<command>-<UTC timestamp>/ and points latest at it', async () => {
    const out = fresh();
    const d = await createRunDirectory(out, 'experiment', NOW);
    expect(runStamp(NOW)).toBe('20260303T140007Z');
    expect(d.name).toBe('experiment-20260303T140007Z');
    expect(statSync(d.dir).isDirectory()).toBe(true);
    expect(readlinkSync(join(out, 'latest'))).toBe(d.name);
    const e = await createRunDirectory(out, 'verify-local', new Date(NOW.getTime() + 60_000));
    expect(readlinkSync(join(out, 'latest'))).toBe(e.name);
    expect(readdirSync(out).sort()).toEqual(['experiment-20260303T140007Z', 'latest', 'verify-local-20260303T140107Z']);
  });

  it('is unique when runs start in the same second, also concurrently, and leaves no temporary link', async () => {
    const out = fresh();
    const dirs = await Promise.all(Array.from({ length: 6 }, () => createRunDirectory(out, 'smoke', NOW)));
    const names = dirs.map((d) => d.name).sort();
    expect(new Set(names).size).toBe(6);
    expect(names).toContain('smoke-20260303T140007Z');
    expect(names).toContain('smoke-20260303T140007Z-6');
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
    expect(names).toContain(readlinkSync(join(out, 'latest')));
  });

  it('refuses a bad command name, and a latest that is not a link', async () => {
    await expect(createRunDirectory(fresh(), '../etc', NOW)).rejects.toThrow(/lower-case letters/);
    const out = fresh();
    mkdirSync(join(out, 'latest', 'x'), { recursive: true });
    await expect(createRunDirectory(out, 'smoke', NOW)).rejects.toThrow(/latest exists and is not a symlink: remove it/);
  });
});

describe('writeRun', () => {
  async function write(run: SyntheticRun, env: NodeJS.ProcessEnv = {}) {
    const d = await createRunDirectory(fresh(), run.record.command, NOW);
    const files = await writeRun(d.dir, run.record, run.ledgerLines ? run.ledgerLines() : null, { env });
    return { d, files };
  }

  it('FAIL run: every file, verdict.json valid, junit valid, the verdict recomputable from the ledger', async () => {
    const run = podKillRun();
    const stepSummary = join(root, 'step-summary.md');
    const { files } = await write(run, { GITHUB_STEP_SUMMARY: stepSummary });
    for (const f of ['verdict.json', 'ledger.ndjson.gz', 'junit.xml', 'summary.md', 'report.html'])
      expect(existsSync(join(files.dir, f))).toBe(true);
    const written = JSON.parse(readFileSync(files.reports.json, 'utf8')) as RunRecord;
    expect(validateRunRecord(written).ok).toBe(true);
    expect(written).toEqual(run.record);
    expect(files.ledgerLines).toBe(12_000);
    expect(xmllintOk(files.reports.junit)).toBe(true);
    expect(readFileSync(stepSummary, 'utf8')).toBe(readFileSync(files.reports.markdown, 'utf8'));
    expect(files.stepSummary).toBe(stepSummary);
    const c = written.checks[0];
    const again = (await recompute(files.dir)).get(c.ledgerLabel!)!;
    expect({ total: again.total, failed: again.failed, dropped: again.dropped }).toEqual({
      total: c.requests!.total,
      failed: c.requests!.failed,
      dropped: c.requests!.dropped,
    });
    expect(again.causes).toEqual(Object.fromEntries(c.failures.map((f) => [f.cause, f.count])));
    const first = (await readLedger(files.dir).next()).value as LedgerLine;
    expect(Object.keys(first)).toEqual([
      'row',
      'iteration',
      'name',
      'outcome',
      'scheduled_at',
      'issued_at',
      'started_at',
      'ended_at',
      'status',
      'error',
      'error_code',
      'served_by',
      'app_version',
      'connection',
      'local_port',
      'kind',
      'created_by',
      'connection_use',
      'connection_age_ms',
      'check',
    ]);
  });

  it('PASS, every cause, no requests: valid files each', async () => {
    for (const run of [rolloutPassRun(), everyCauseRun(), noRequestsRun()]) {
      const { files } = await write(run);
      expect(validateRunRecord(JSON.parse(readFileSync(files.reports.json, 'utf8'))).ok).toBe(true);
      expect(xmllintOk(files.reports.junit)).toBe(true);
    }
  });

  it('a run that ended in ERROR with no checks and no ledger', async () => {
    const { files } = await write(errorRun());
    expect(files.ledger).toBeNull();
    expect(existsSync(join(files.dir, 'ledger.ndjson.gz'))).toBe(false);
    const written = JSON.parse(readFileSync(files.reports.json, 'utf8')) as RunRecord;
    expect(written.verdict).toBe('ERROR');
    expect(written.files.ledger).toBeNull();
    expect(xmllintOk(files.reports.junit)).toBe(true);
  });

  it('takes the ledger as an async iterable too', async () => {
    const run = podKillRun();
    async function* lines() {
      for (const l of run.ledgerLines!()) yield l + '\n';
    }
    const d = await createRunDirectory(fresh(), 'experiment', NOW);
    const files = await writeRun(d.dir, run.record, lines(), { env: {} });
    let count = 0;
    for await (const l of readLedgerLines(files.ledger!)) {
      expect(l.startsWith('{')).toBe(true);
      count++;
    }
    expect(count).toBe(12_000);
    expect(readFileSync(files.reports.html, 'utf8')).toContain('"source":"ledger"');
  });

  it('an invalid record is a bug: it throws with the schema problems and writes nothing', async () => {
    const run = podKillRun();
    (run.record.checks[0] as { verdict: string }).verdict = 'MAYBE';
    const d = await createRunDirectory(fresh(), 'experiment', NOW);
    const err = await writeRun(d.dir, run.record, run.ledgerLines!(), { env: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidRunRecordError);
    expect(err.message).toMatch(/\/checks\/0\/verdict: must be equal to one of the allowed values/);
    expect(readdirSync(d.dir)).toEqual([]);
  });

  it(
    '10⁶ requests: the ledger streams through, every file is written, summary and page stay small',
    { timeout: 300_000 },
    async () => {
      const run = longRun({ rate: 1000, durationS: 1000 });
      const { files } = await write(run);
      expect(files.ledgerLines).toBe(1_000_000);
      expect(statSync(files.reports.markdown).size).toBeLessThan(1024 * 1024);
      expect(statSync(files.reports.html).size).toBeLessThan(5 * 1024 * 1024);
      expect(xmllintOk(files.reports.junit)).toBe(true);
      const again = (await recompute(files.dir)).get(run.record.checks[0].ledgerLabel!)!;
      expect(again.total).toBe(1_000_000);
      expect(again.failed).toBe(run.record.checks[0].requests!.failed);
    },
  );
});

describe('renderRunDirectory (verdict report)', () => {
  it('re-renders every format from verdict.json and the ledger, byte for byte what writeRun wrote', async () => {
    const run = everyCauseRun();
    const d = await createRunDirectory(fresh(), 'experiment', NOW);
    const files = await writeRun(d.dir, run.record, run.ledgerLines!(), { env: {} });
    const before = Object.fromEntries(
      ['verdict.json', 'junit.xml', 'summary.md', 'report.html'].map((f) => [f, readFileSync(join(d.dir, f), 'utf8')]),
    );
    for (const f of ['junit.xml', 'summary.md', 'report.html']) rmSync(join(d.dir, f));
    const r = await renderRunDirectory(d.dir);
    expect(Object.keys(r.written).sort()).toEqual(['html', 'json', 'junit', 'markdown']);
    expect(r.ledgerLines).toBe(files.ledgerLines);
    for (const [f, text] of Object.entries(before)) expect(readFileSync(join(d.dir, f), 'utf8')).toBe(text);
  });

  it('writes and re-renders one file per registered format (render/index.ts), and reads the ledger only for those that ask', async () => {
    const run = podKillRun();
    const d = await createRunDirectory(fresh(), 'experiment', NOW);
    const files = await writeRun(d.dir, run.record, run.ledgerLines!(), { env: {} });
    expect(Object.keys(files.reports)).toEqual(RENDERERS.map((r) => r.format));
    for (const r of RENDERERS) expect(files.reports[r.format]).toBe(join(d.dir, r.file));
    expect(readdirSync(d.dir).sort()).toEqual(['ledger.ndjson.gz', ...RENDERERS.map((r) => r.file)].sort());
    const withoutLedger = RENDERERS.filter((r) => !('readLedger' in r)).map((r) => r.format);
    rmSync(join(d.dir, 'ledger.ndjson.gz'));
    const r = await renderRunDirectory(d.dir, withoutLedger);
    expect(Object.keys(r.written)).toEqual(withoutLedger);
    expect(r.ledgerLines).toBe(0);
  });

  it('names the problem: not a run directory, damaged verdict.json, missing or truncated ledger', async () => {
    const out = fresh();
    mkdirSync(out, { recursive: true });
    await expect(renderRunDirectory(join(out, 'nope'))).rejects.toThrow(NotARunDirectoryError);
    await expect(renderRunDirectory(out)).rejects.toThrow(
      /is not a run directory: it has no verdict\.json\. A run directory is what a verdict command writes/,
    );
    const run = podKillRun();
    const d = await createRunDirectory(out, 'experiment', NOW);
    await writeRun(d.dir, run.record, run.ledgerLines!(), { env: {} });
    await expect(renderRunDirectory(join(d.dir, 'verdict.json'))).rejects.toThrow(
      /is a file, not a run directory: give the folder that holds it/,
    );
    // truncated ledger
    const gz = join(d.dir, 'ledger.ndjson.gz');
    truncateSync(gz, Math.floor(statSync(gz).size / 2));
    await expect(renderRunDirectory(d.dir, ['html'])).rejects.toThrow(UnreadableRunError);
    await expect(renderRunDirectory(d.dir, ['junit'])).resolves.toBeTruthy(); // the ledger is only read for the HTML
    rmSync(gz);
    await expect(renderRunDirectory(d.dir, ['html'])).rejects.toThrow(
      /ledger\.ndjson\.gz is missing, but verdict\.json names it/,
    );
    // a ledger named by a path that leaves the run directory
    const elsewhere = JSON.parse(readFileSync(join(d.dir, 'verdict.json'), 'utf8'));
    writeFileSync(
      join(d.dir, 'verdict.json'),
      JSON.stringify({ ...elsewhere, files: { ledger: '../other-run/ledger.ndjson.gz' } }),
    );
    await expect(renderRunDirectory(d.dir, ['html'])).rejects.toThrow(/files\.ledger must name a file in the run directory/);
    writeFileSync(join(d.dir, 'verdict.json'), JSON.stringify(elsewhere));
    // schema-invalid and unparsable verdict.json
    const bad = JSON.parse(readFileSync(join(d.dir, 'verdict.json'), 'utf8'));
    bad.schema = 'verdict/v0';
    writeFileSync(join(d.dir, 'verdict.json'), JSON.stringify(bad));
    await expect(renderRunDirectory(d.dir)).rejects.toThrow(
      /verdict\.json does not match the verdict\/v1 schema[\s\S]*\/schema: must be equal to constant/,
    );
    writeFileSync(join(d.dir, 'verdict.json'), '{"schema": "verdict/v1", ');
    await expect(renderRunDirectory(d.dir)).rejects.toThrow(/verdict\.json is not JSON/);
  });
});
