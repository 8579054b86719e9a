/**
 * The run history: every run record's experiments with their figures (failed requests, p99 per
 * version, drain and rollout times, seconds without a ready endpoint: what can be non-zero by
 * design), appended to one SQLite file under the reports folder (`.reports/history.sqlite`) or a
 * shared one (`--history <path>`, e.g. a CI cache), keyed by experiment × target kind × app ×
 * replicas. The gate "no worse than history" compares a run's figures with the last N comparable
 * runs; `verdict trend` prints the history and draws it.
 *
 * SQLite through Node's built-in `node:sqlite` (DatabaseSync, Node 24): a real embedded database
 * in one file that CI can cache or keep as an artifact, with no native addon to build (npm install
 * scripts do not run here and node-gyp cannot download headers) and no dependency to add.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { Gate } from './gates.ts';
import type { CheckRecord, RunRecord } from './run-record.ts';
import { worst, type Verdict } from '../lib/verdict.ts';

/** The history's file name in the reports folder. */
export const HISTORY_FILE = 'history.sqlite';

/** What makes two runs of an experiment comparable. */
export interface HistoryKey {
  experiment: string;
  /** `embedded`, `kind`, `existing`, `url`. */
  targetKind: string;
  app: string;
  /** Replicas of the release under test, null when unknown. */
  replicas: number | null;
}

export interface HistoryRun extends HistoryKey {
  id: number;
  /** ISO time the run started. */
  startedAt: string;
  command: string;
  verdict: Verdict;
  /** Deliberate faults of the run (detector runs: never a baseline). */
  faults: string[];
  versions: Record<string, string>;
  /** The run directory, when known. */
  runDir: string | null;
  figures: Record<string, number>;
}

const SCHEMA_VERSION = 1;

export class RunHistory implements Disposable {
  readonly path: string;
  readonly #db: DatabaseSync;

  private constructor(path: string, db: DatabaseSync) {
    this.path = path;
    this.#db = db;
  }

  /** Opens (or creates, with its folder) the history at `path`. */
  static open(path: string): RunHistory {
    const file = resolve(path);
    mkdirSync(dirname(file), { recursive: true });
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(file, { timeout: 5000 });
    } catch (err) {
      throw new Error(`cannot open the run history ${file}: ${(err as Error).message}`);
    }
    let version: number;
    try {
      version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
    } catch (err) {
      db.close();
      throw new Error(`${file} is not a verdict run history (${(err as Error).message}): give another --history path`);
    }
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new Error(
        `${file} is a run history of a newer verdict (schema ${version}, this one reads ${SCHEMA_VERSION}): update verdict`,
      );
    }
    try {
      db.exec(`
        CREATE TABLE IF NOT EXISTS runs (
          id INTEGER PRIMARY KEY,
          started_at TEXT NOT NULL,
          command TEXT NOT NULL,
          experiment TEXT NOT NULL,
          target_kind TEXT NOT NULL,
          app TEXT NOT NULL,
          replicas INTEGER,
          verdict TEXT NOT NULL,
          faults TEXT NOT NULL,
          versions TEXT NOT NULL,
          run_dir TEXT
        );
        CREATE UNIQUE INDEX IF NOT EXISTS runs_once ON runs (started_at, experiment, target_kind, app);
        CREATE INDEX IF NOT EXISTS runs_by_key ON runs (experiment, target_kind, app, replicas, started_at);
        CREATE TABLE IF NOT EXISTS figures (
          run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
          name TEXT NOT NULL,
          value REAL NOT NULL,
          PRIMARY KEY (run_id, name)
        );
        PRAGMA user_version = ${SCHEMA_VERSION};
      `);
    } catch (err) {
      db.close();
      throw new Error(`${file} is not a verdict run history (${(err as Error).message}): give another --history path`);
    }
    return new RunHistory(file, db);
  }

  /**
   * Appends the record's experiments (checks of kind `experiment`), each with its figures. A run
   * appended twice is kept once. Returns how many experiments were added.
   */
  append(record: RunRecord, runDir: string | null = null): number {
    const insertRun = this.#db.prepare(
      `INSERT OR IGNORE INTO runs (started_at, command, experiment, target_kind, app, replicas, verdict, faults, versions, run_dir)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertFigure = this.#db.prepare('INSERT INTO figures (run_id, name, value) VALUES (?, ?, ?)');
    let added = 0;
    this.#db.exec('BEGIN');
    try {
      for (const c of record.checks) {
        if (c.kind !== 'experiment') continue;
        const key = keyOf(record, c);
        const r = insertRun.run(
          record.startedAt,
          record.command,
          key.experiment,
          key.targetKind,
          key.app,
          key.replicas,
          c.verdict,
          JSON.stringify(record.app?.faults ?? []),
          JSON.stringify(record.app?.versions ?? {}),
          runDir,
        );
        if (r.changes === 0) continue;
        added++;
        for (const [name, value] of Object.entries(figuresOf(c)))
          if (Number.isFinite(value)) insertFigure.run(Number(r.lastInsertRowid), name, value);
      }
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
    return added;
  }

  /** Runs, oldest first, optionally of one experiment and one key's fields. */
  runs(filter: Partial<HistoryKey> = {}): HistoryRun[] {
    const where: string[] = [];
    const args: Array<string | number | null> = [];
    const cond = (sql: string, value: string | number | null | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      args.push(value);
    };
    cond('experiment = ?', filter.experiment);
    cond('target_kind = ?', filter.targetKind);
    cond('app = ?', filter.app);
    cond('replicas IS ?', filter.replicas);
    const rows = this.#db
      .prepare(`SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at, id`)
      .all(...args) as unknown as RunRow[];
    return this.#withFigures(rows);
  }

  /**
   * The last `limit` runs comparable with `key` that started before `before` (ISO time), newest
   * first: same experiment, target kind, app and replicas, no deliberate fault, verdict PASS.
   */
  comparable(key: HistoryKey, before: string, limit: number): HistoryRun[] {
    const rows = this.#db
      .prepare(
        `SELECT * FROM runs WHERE experiment = ? AND target_kind = ? AND app = ? AND replicas IS ?
           AND faults = '[]' AND verdict = 'PASS' AND started_at < ?
         ORDER BY started_at DESC, id DESC LIMIT ?`,
      )
      .all(key.experiment, key.targetKind, key.app, key.replicas, before, limit) as unknown as RunRow[];
    return this.#withFigures(rows);
  }

  #withFigures(rows: RunRow[]): HistoryRun[] {
    const figures = this.#db.prepare('SELECT name, value FROM figures WHERE run_id = ?');
    return rows.map((r) => ({
      id: r.id,
      startedAt: r.started_at,
      command: r.command,
      experiment: r.experiment,
      targetKind: r.target_kind,
      app: r.app,
      replicas: r.replicas,
      verdict: r.verdict as Verdict,
      faults: JSON.parse(r.faults) as string[],
      versions: JSON.parse(r.versions) as Record<string, string>,
      runDir: r.run_dir,
      figures: Object.fromEntries((figures.all(r.id) as Array<{ name: string; value: number }>).map((f) => [f.name, f.value])),
    }));
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

interface RunRow {
  id: number;
  started_at: string;
  command: string;
  experiment: string;
  target_kind: string;
  app: string;
  replicas: number | null;
  verdict: string;
  faults: string;
  versions: string;
  run_dir: string | null;
}

/** The key of one experiment of a run. */
export function keyOf(record: RunRecord, check: CheckRecord): HistoryKey {
  return {
    experiment: check.name,
    targetKind: record.target.kind,
    app: record.app?.name ?? '',
    replicas: check.replicas ?? null,
  };
}

/** A check's figures; a record written before figures existed still has its failed requests. */
export function figuresOf(check: CheckRecord): Record<string, number> {
  if (check.figures) return check.figures;
  return check.requests ? { failed_requests: check.requests.failed } : {};
}

export interface HistoryGateOptions {
  /** Comparable runs a figure is judged against (N). */
  runs: number;
  /** A fraction over the median allowed per figure (its full name, or its name before the first "."); else the P99 rule. */
  margins?: Record<string, number>;
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
const fmt = (x: number) => String(Math.round(x * 1000) / 1000);
const describeKey = (k: HistoryKey) =>
  `${k.targetKind}, ${k.app || 'no app'}, ${k.replicas === null ? 'replicas unknown' : `${k.replicas} replicas`}`;

/**
 * "No worse than history", one gate per experiment of `record`: each of its figures against the
 * last N comparable runs before it that have that figure. Above their P99 (or above their median
 * by more than a declared margin) is a FAIL; fewer than N such runs is INCONCLUSIVE, never PASS,
 * and says how many more are needed.
 */
export function historyGates(history: RunHistory, record: RunRecord, o: HistoryGateOptions): Gate[] {
  const gates: Gate[] = [];
  for (const c of record.checks) {
    if (c.kind !== 'experiment') continue;
    const key = keyOf(record, c);
    const name = `${c.name}: no worse than history`;
    const figures = figuresOf(c);
    const names = Object.keys(figures).sort();
    if (names.length === 0) {
      gates.push({ name, verdict: 'INCONCLUSIVE', evidence: `${c.name} has no figures to compare (it sent no load?)` });
      continue;
    }
    const past = history.comparable(key, record.startedAt, 5 * o.runs + 50);
    const lines: Array<{ verdict: Verdict; text: string }> = [];
    const observed: Record<string, number | string | null> = {};
    for (const f of names) {
      const values = past
        .map((r) => r.figures[f])
        .filter((v) => v !== undefined)
        .slice(0, o.runs);
      const now = figures[f];
      observed[f] = now;
      if (values.length < o.runs) {
        const more = o.runs - values.length;
        lines.push({
          verdict: 'INCONCLUSIVE',
          text: `${f} ${fmt(now)}: only ${values.length} comparable run${values.length === 1 ? '' : 's'} (${o.runs} needed: ${more} more)`,
        });
        observed[`${f}_needs_runs`] = more;
        continue;
      }
      const sorted = [...values].sort((a, b) => a - b);
      const median = quantile(sorted, 0.5);
      const margin = o.margins?.[f] ?? o.margins?.[f.split('.')[0]];
      const limit = margin !== undefined ? median * (1 + margin) : quantile(sorted, 0.99);
      const rule = margin !== undefined ? `median ${fmt(median)} + ${Math.round(margin * 100)} %` : `P99 of the last ${o.runs}`;
      observed[`${f}_limit`] = limit;
      const over = now > limit + 1e-9;
      lines.push({
        verdict: over ? 'FAIL' : 'PASS',
        text: `${f} ${fmt(now)} ${over ? '>' : '<='} ${fmt(limit)} (${rule}; median ${fmt(median)})`,
      });
    }
    const verdict = worst(lines.map((l) => l.verdict));
    const shown = [...lines].sort((a, b) => rank(b.verdict) - rank(a.verdict));
    gates.push({
      name,
      verdict,
      observed: { ...observed, comparable_runs: Math.min(past.length, o.runs) },
      evidence:
        `against the last comparable runs (${describeKey(key)}; no fault, PASS): ` +
        shown.map((l) => l.text).join('; ') +
        (verdict === 'FAIL' ? ': worse than history' : ''),
    });
  }
  return gates;
}

const rank = (v: Verdict) => ({ PASS: 0, INCONCLUSIVE: 1, FAIL: 2, ERROR: 3 })[v];
