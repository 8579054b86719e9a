/**
 * The run directory every verdict-giving command writes: `<out>/<command>-<UTC timestamp>/`, with a
 * `latest` link beside it, holding `ledger.ndjson.gz` (every request of the run, streamed through
 * gzip) and one file per report format of ./render/index.ts:
 *
 *   verdict.json       the RunRecord (schema verdict/v1), validated before anything is written
 *   junit.xml          for CI test reporters
 *   summary.md         for GITHUB_STEP_SUMMARY (appended there when that variable is set)
 *   report.html        the offline timeline report
 *
 * `renderRunDirectory` re-renders them from verdict.json + the ledger, which is what
 * `verdict report <run-dir>` does with a CI artifact.
 */
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { LEDGER_FILE, readLedgerLines, writeLedgerGz, type LineSource } from './ledger-file.ts';
import { REPORT_FORMATS, rendererOf, type LedgerReader, type ReportFormat } from './render/index.ts';
import { InvalidRunRecordError, assertValidRunRecord, jsonReport } from './render/json.ts';
import { appendStepSummary } from './render/markdown.ts';
import type { RunRecord } from './run-record.ts';
import { safeDeep } from '../lib/safe-text.ts';

export { REPORT_FORMATS, rendererOf, type ReportFormat };

/** verdict.json: the file that makes a folder a run directory. */
export const VERDICT_FILE = jsonReport.file;

export const LATEST_LINK = 'latest';

export interface RunDirectory {
  /** Absolute path of the new directory. */
  dir: string;
  /** Its name, `<command>-<YYYYMMDDTHHMMSSZ>` (with `-2`, `-3`, ... when that second was taken). */
  name: string;
  /** The `latest` link beside it (now pointing at it). */
  latest: string;
}

/** `20260303T140000Z` */
export function runStamp(now: Date): string {
  return now
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/**
 * Makes `<outRoot>/<command>-<UTC timestamp>/`, unique even when two runs start in the same second
 * (mkdir is the lock: the loser takes the next suffix), and points `<outRoot>/latest` at it
 * atomically (a symlink under a temporary name, renamed over the old one).
 */
export async function createRunDirectory(outRoot: string, command: string, now: Date = new Date()): Promise<RunDirectory> {
  if (!/^[a-z][a-z0-9-]*$/.test(command))
    throw new Error(`run directory: command name ${JSON.stringify(command)} must be lower-case letters, digits and dashes`);
  const root = resolve(outRoot);
  await mkdir(root, { recursive: true });
  const base = `${command}-${runStamp(now)}`;
  let name = base;
  for (let n = 2; ; n++) {
    try {
      await mkdir(join(root, name));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 10_000) throw err;
      name = `${base}-${n}`;
    }
  }
  const latest = join(root, LATEST_LINK);
  const tmp = join(root, `.${LATEST_LINK}-${process.pid}-${randomUUID().slice(0, 8)}`);
  await symlink(name, tmp);
  try {
    await rename(tmp, latest);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    const st = await lstat(latest).catch(() => null);
    if (st && !st.isSymbolicLink())
      throw new Error(`${latest} exists and is not a symlink: remove it (verdict keeps a "latest" link to the newest run there)`);
    throw err;
  }
  return { dir: join(root, name), name, latest };
}

export interface RunFiles {
  dir: string;
  /** Every report written, by format (`json` is verdict.json): the renderers of ./render/index.ts. */
  reports: Record<ReportFormat, string>;
  /** null when the run had no ledger (it broke before sending load). */
  ledger: string | null;
  /** `$GITHUB_STEP_SUMMARY` when the summary was appended to it. */
  stepSummary: string | null;
  /** Ledger lines written. */
  ledgerLines: number;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

export interface WriteRunOptions {
  /** Environment for GITHUB_STEP_SUMMARY (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Writes every file of a run into `dir` (made by createRunDirectory). The record is checked against
 * the schema first: an invalid record is a bug in whoever built it, so this throws
 * InvalidRunRecordError (with every problem) and writes nothing. `ledgerLines` are NDJSON lines
 * (`Ledger.toNdjsonLine` plus `check`, and `cause` and `pod` on failed rows), streamed once: into
 * the gzip file and, in the same pass, into the HTML report's table of failed requests. Pass null
 * for a run without a ledger. `record.files.ledger` is set to match.
 */
export async function writeRun(
  dir: string,
  record: RunRecord,
  ledgerLines: LineSource | null,
  opts: WriteRunOptions = {},
): Promise<RunFiles> {
  // Every file of the run gets the sanitised record (lib/safe-text.ts): text a service or a cluster
  // controls reaches no terminal, CI log or workflow-command parser that reads these files.
  const checked = assertValidRunRecord(
    safeDeep({ ...record, files: { ...record.files, ledger: ledgerLines ? LEDGER_FILE : null } }),
  );
  await mkdir(dir, { recursive: true });
  const files: RunFiles = {
    dir,
    reports: {} as RunFiles['reports'],
    ledger: ledgerLines ? join(dir, LEDGER_FILE) : null,
    stepSummary: null,
    ledgerLines: 0,
  };
  // The formats that need only the record first (verdict.json leads): a run whose ledger cannot be
  // written still leaves its record. Then the ledger, streamed once into the gzip file and every
  // reader of the other formats (the HTML report's table of failed requests), then those formats.
  const readers = ledgerReaders(checked, REPORT_FORMATS);
  for (const f of REPORT_FORMATS) if (!readers.has(f)) files.reports[f] = await writeReport(dir, checked, f, undefined);
  if (ledgerLines && files.ledger)
    files.ledgerLines = await writeLedgerGz(files.ledger, ledgerLines, (line) => {
      for (const r of readers.values()) r.add(line);
    });
  for (const [f, r] of readers) files.reports[f] = await writeReport(dir, checked, f, r.result());
  files.stepSummary = await appendStepSummary(checked, opts.env ?? process.env);
  for (const l of runWrittenListeners) l(checked, files);
  return files;
}

/** A ledger reader for each of `formats` that reads the ledger (./render/renderer.ts), in the registry's order. */
function ledgerReaders(record: RunRecord, formats: readonly ReportFormat[]): Map<ReportFormat, LedgerReader<unknown>> {
  const readers = new Map<ReportFormat, LedgerReader<unknown>>();
  for (const f of formats) {
    const r = rendererOf(f);
    if (r.readLedger) readers.set(f, r.readLedger(record));
  }
  return readers;
}

/** Writes one format's file (atomically) and returns its path. */
async function writeReport(dir: string, record: RunRecord, format: ReportFormat, fromLedger: unknown): Promise<string> {
  const r = rendererOf(format);
  const path = join(dir, r.file);
  await writeAtomic(path, r.render(record, fromLedger));
  return path;
}

export type RunWrittenListener = (record: RunRecord, files: RunFiles) => void;
const runWrittenListeners = new Set<RunWrittenListener>();

/**
 * Calls `listener` after every run directory this process writes (the record as written: validated
 * and redacted), e.g. to send its notification once the command is done. Returns the unsubscribe.
 */
export function onRunWritten(listener: RunWrittenListener): () => void {
  runWrittenListeners.add(listener);
  return () => runWrittenListeners.delete(listener);
}

// ------------------------------------------------------------------ reading a run directory back

/** The path given is not a run directory (missing, not a directory, no verdict.json): a usage mistake. */
export class NotARunDirectoryError extends Error {
  override name = 'NotARunDirectoryError';
}

/** The run directory's files cannot be read: unparsable or schema-invalid verdict.json, a missing or corrupt ledger. */
export class UnreadableRunError extends Error {
  override name = 'UnreadableRunError';
}

const HOW =
  'A run directory is what a verdict command writes under its --out folder, e.g. .reports/experiment-20260303T140000Z/ (or .reports/latest/), holding verdict.json and ledger.ndjson.gz.';

/** Reads and validates `<dir>/verdict.json`. */
export async function readRunRecord(dir: string): Promise<RunRecord> {
  const st = await stat(dir).catch(() => null);
  if (!st) throw new NotARunDirectoryError(`${dir} does not exist. ${HOW}`);
  if (!st.isDirectory())
    throw new NotARunDirectoryError(
      `${dir} is a file, not a run directory${basename(dir) === VERDICT_FILE ? ': give the folder that holds it' : ''}. ${HOW}`,
    );
  const file = join(dir, VERDICT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotARunDirectoryError(`${dir} is not a run directory: it has no ${VERDICT_FILE}. ${HOW}`);
    throw new UnreadableRunError(`${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UnreadableRunError(
      `${file} is not JSON (${(err as Error).message}); the file is damaged: take it again from the run's artifact`,
    );
  }
  try {
    return assertValidRunRecord(value, file);
  } catch (err) {
    if (err instanceof InvalidRunRecordError) throw new UnreadableRunError(err.message);
    throw err;
  }
}

export interface RerenderResult {
  record: RunRecord;
  /** Files written, by format. */
  written: Partial<Record<ReportFormat, string>>;
  /** Ledger lines read (0 when no format that reads it was asked for, or the run has no ledger). */
  ledgerLines: number;
}

/**
 * Re-renders the given formats of a run directory from its verdict.json and ledger (the ledger is
 * read, streaming, only for the formats that read it: the HTML report's table of failed requests).
 */
export async function renderRunDirectory(
  dir: string,
  formats: readonly ReportFormat[] = REPORT_FORMATS,
): Promise<RerenderResult> {
  const record = safeDeep(await readRunRecord(dir));
  const wanted = REPORT_FORMATS.filter((f) => formats.includes(f));
  const written: RerenderResult['written'] = {};
  const readers = ledgerReaders(record, wanted);
  for (const f of wanted) if (!readers.has(f)) written[f] = await writeReport(dir, record, f, undefined);
  const ledgerLines = readers.size ? await readLedgerInto(dir, record, [...readers.values()]) : 0;
  for (const [f, r] of readers) written[f] = await writeReport(dir, record, f, r.result());
  return { record, written, ledgerLines };
}

/** Feeds every line of the run's ledger (if it has one) to `readers`; returns the lines read. */
async function readLedgerInto(dir: string, record: RunRecord, readers: LedgerReader<unknown>[]): Promise<number> {
  if (record.files.ledger === null) return 0;
  // A file of the run directory, named, not a path: a verdict.json from elsewhere must not make us read outside it.
  if (record.files.ledger !== basename(record.files.ledger) || record.files.ledger.startsWith('.')) {
    throw new UnreadableRunError(
      `${join(dir, VERDICT_FILE)}: files.ledger must name a file in the run directory, not ${JSON.stringify(record.files.ledger)}`,
    );
  }
  const ledger = join(dir, record.files.ledger);
  if (!(await stat(ledger).catch(() => null)))
    throw new UnreadableRunError(
      `${ledger} is missing, but verdict.json names it: copy it from the run's artifact too (it holds every request)`,
    );
  let lines = 0;
  try {
    for await (const line of readLedgerLines(ledger)) {
      lines++;
      for (const r of readers) r.add(line);
    }
  } catch (err) {
    throw new UnreadableRunError(
      `${ledger} cannot be read: ${(err as Error).message} (the file is damaged or truncated: take it again from the run's artifact)`,
    );
  }
  return lines;
}
