/**
 * The run directory every verdict-giving command writes: `<out>/<command>-<UTC timestamp>/`, with a
 * `latest` link beside it, holding
 *
 *   verdict.json       the RunRecord (schema verdict/v1), validated before anything is written
 *   ledger.ndjson.gz   every request of the run, streamed through gzip
 *   junit.xml          for CI test reporters
 *   summary.md         for GITHUB_STEP_SUMMARY (appended there when that variable is set)
 *   report.html        the offline timeline report
 *
 * `renderRunDirectory` re-renders the last three (and verdict.json) from verdict.json + the ledger,
 * which is what `verdict report <run-dir>` does with a CI artifact.
 */
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { LEDGER_FILE, readLedgerLines, writeLedgerGz, type LineSource } from './ledger-file.ts';
import { FailedRowCollector, renderHtml } from './render/html.ts';
import { InvalidRunRecordError, assertValidRunRecord } from './render/json.ts';
import { renderJunit } from './render/junit.ts';
import { appendStepSummary, renderMarkdown } from './render/markdown.ts';
import type { RunRecord } from './run-record.ts';
import { safeDeep } from '../lib/safe-text.ts';

export const RUN_FILES = {
  verdict: 'verdict.json',
  ledger: LEDGER_FILE,
  junit: 'junit.xml',
  summary: 'summary.md',
  html: 'report.html',
} as const;

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
  verdictJson: string;
  /** null when the run had no ledger (it broke before sending load). */
  ledger: string | null;
  junit: string;
  summary: string;
  html: string;
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
  const files: RunFiles = {
    dir,
    verdictJson: join(dir, RUN_FILES.verdict),
    ledger: ledgerLines ? join(dir, RUN_FILES.ledger) : null,
    junit: join(dir, RUN_FILES.junit),
    summary: join(dir, RUN_FILES.summary),
    html: join(dir, RUN_FILES.html),
    stepSummary: null,
    ledgerLines: 0,
  };
  await mkdir(dir, { recursive: true });
  await writeAtomic(files.verdictJson, JSON.stringify(checked, null, 2) + '\n');
  const collector = new FailedRowCollector(checked);
  if (ledgerLines && files.ledger)
    files.ledgerLines = await writeLedgerGz(files.ledger, ledgerLines, (line) => collector.add(line));
  await writeAtomic(files.junit, renderJunit(checked));
  await writeAtomic(files.summary, renderMarkdown(checked));
  await writeAtomic(files.html, renderHtml(checked, collector.result(checked)));
  files.stepSummary = await appendStepSummary(checked, opts.env ?? process.env);
  for (const l of runWrittenListeners) l(checked, files);
  return files;
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
      `${dir} is a file, not a run directory${basename(dir) === RUN_FILES.verdict ? ': give the folder that holds it' : ''}. ${HOW}`,
    );
  const file = join(dir, RUN_FILES.verdict);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotARunDirectoryError(`${dir} is not a run directory: it has no ${RUN_FILES.verdict}. ${HOW}`);
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

export type ReportFormat = 'json' | 'junit' | 'markdown' | 'html';
export const REPORT_FORMATS: readonly ReportFormat[] = ['json', 'junit', 'markdown', 'html'];

export interface RerenderResult {
  record: RunRecord;
  /** Files written, by format. */
  written: Partial<Record<ReportFormat, string>>;
  /** Ledger lines read (0 when no HTML was asked for, or the run has no ledger). */
  ledgerLines: number;
}

/**
 * Re-renders the given formats of a run directory from its verdict.json and ledger (the ledger is
 * read, streaming, only for the HTML report's table of failed requests).
 */
export async function renderRunDirectory(
  dir: string,
  formats: readonly ReportFormat[] = REPORT_FORMATS,
): Promise<RerenderResult> {
  const record = safeDeep(await readRunRecord(dir));
  const written: RerenderResult['written'] = {};
  let ledgerLines = 0;
  if (formats.includes('json')) {
    written.json = join(dir, RUN_FILES.verdict);
    await writeAtomic(written.json, JSON.stringify(record, null, 2) + '\n');
  }
  if (formats.includes('junit')) await writeAtomic((written.junit = join(dir, RUN_FILES.junit)), renderJunit(record));
  if (formats.includes('markdown')) await writeAtomic((written.markdown = join(dir, RUN_FILES.summary)), renderMarkdown(record));
  if (formats.includes('html')) {
    const collector = new FailedRowCollector(record);
    if (record.files.ledger !== null) {
      // A file of the run directory, named, not a path: a verdict.json from elsewhere must not make us read outside it.
      if (record.files.ledger !== basename(record.files.ledger) || record.files.ledger.startsWith('.')) {
        throw new UnreadableRunError(
          `${join(dir, RUN_FILES.verdict)}: files.ledger must name a file in the run directory, not ${JSON.stringify(record.files.ledger)}`,
        );
      }
      const ledger = join(dir, record.files.ledger);
      if (!(await stat(ledger).catch(() => null)))
        throw new UnreadableRunError(
          `${ledger} is missing, but verdict.json names it: copy it from the run's artifact too (it holds every request)`,
        );
      try {
        for await (const line of readLedgerLines(ledger)) collector.add(line);
      } catch (err) {
        throw new UnreadableRunError(
          `${ledger} cannot be read: ${(err as Error).message} (the file is damaged or truncated: take it again from the run's artifact)`,
        );
      }
      ledgerLines = collector.lines;
    }
    await writeAtomic((written.html = join(dir, RUN_FILES.html)), renderHtml(record, collector.result(record)));
  }
  return { record, written, ledgerLines };
}
