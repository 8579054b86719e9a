/**
 * The command shell: what every `verdict` command shares while it runs and when it ends.
 *
 * - Interrupts, one rule for all: the first Ctrl-C (SIGINT) or SIGTERM stops the command gracefully
 *   (its `signal` aborts: it stops its load, tears down what it made and still reports what it
 *   found, as ERROR or INCONCLUSIVE); a second one quits at once with exit code 130, after saying
 *   what a forced quit may leave behind and how to remove it (`leaves`). That is the convention of
 *   terraform, docker compose and k6: nobody is ever stuck behind a cleanup they want to skip, and
 *   nobody skips it by accident with one keypress.
 * - Progress on stderr: `say` prints a line (timed from the start, or after a label such as `load:`),
 *   `update` the live line (rewritten in place on a terminal, one line every `everyMs` in CI). Both
 *   redact the command's secrets (lib/checks/redact.ts) and sanitise (lib/safe-text.ts): what a
 *   service answered cannot drive the terminal, add a line or command CI.
 * - Finishing a verdict command (`finishRun`): the record redacted and sanitised, the run directory
 *   written, the summary (or verdict.json with --json) printed, the verdict's exit code returned.
 */
import { redactDeep, redactor } from '../lib/checks/redact.ts';
import { safeDeep, safeText } from '../lib/safe-text.ts';
import { exitCodeOf } from '../lib/verdict.ts';
import type { LineSource } from '../reports/ledger-file.ts';
import { renderJson } from '../reports/render/json.ts';
import { printRunSummary, ProgressLine } from '../reports/render/terminal.ts';
import { createRunDirectory, writeRun } from '../reports/run-directory.ts';
import type { RunRecord } from '../reports/run-record.ts';

/** The exit code of a command quit by a second interrupt (128 + SIGINT, as a shell reports it). */
export const FORCED_QUIT = 130;

export interface ShellOptions {
  /** What the first interrupt does, after `<signal>: `, e.g. `stopping; cleaning up what the run created first`. */
  stopping: string;
  /** Lines start with `<label>: ` instead of the time since the start (e.g. `load`). */
  label?: string;
  /** Values never to print or write (tokens); those under 8 characters are not redacted (see redact.ts). */
  secrets?: readonly (string | null | undefined)[];
  /** Epoch ms the command started (default now). */
  started?: number;
  /** The live line off a terminal: at most one line per this many ms (default 10 s; 0: every update). */
  everyMs?: number;
  /** Called once on the first interrupt, after the signal aborted (e.g. to pass SIGTERM to a child). */
  onInterrupt?: (signal: NodeJS.Signals) => void;
  stream?: NodeJS.WriteStream;
  /** How a second interrupt ends the process (default process.exit; tests pass their own). */
  exit?: (code: number) => void;
}

export interface Shell extends Disposable {
  /** Aborted by the first interrupt; its reason is `Error('interrupted by SIGINT')`. */
  readonly signal: AbortSignal;
  readonly started: number;
  say(message: string): void;
  update(line: string): void;
  /** Ends the live line (before the summary is printed). */
  done(): void;
  /** What a forced quit would leave behind now, and how to remove it; null: nothing. */
  leaves(what: string | null): void;
  /** `interrupted: <reason>` once interrupted, else the error's message: a run's `error` field. */
  errorOf(err: unknown): string;
  /** Writes the run directory, prints the summary (or verdict.json), returns the exit code. */
  finish(
    record: RunRecord,
    o: { out: string; json?: boolean; ledger?: LineSource | null; onWritten?: (dir: string, record: RunRecord) => void },
  ): Promise<number>;
}

/** Opens the shell: the interrupt handlers stay until it is disposed (`using shell = openShell(...)`). */
export function openShell(o: ShellOptions): Shell {
  const started = o.started ?? Date.now();
  const stream = o.stream ?? process.stderr;
  const redact = redactor(o.secrets ?? []);
  const line = new ProgressLine({ stream, everyMs: o.everyMs ?? 10_000 });
  const head = () => (o.label ? `${o.label}: ` : `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] `);
  const say = (m: string) => line.log(head() + safeText(redact(m)));
  const abort = new AbortController();
  let leftBehind: string | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (abort.signal.aborted) {
      line.done();
      say(`${sig} again: quitting at once${leftBehind ? `; this may be left behind: ${leftBehind}` : ''}`);
      (o.exit ?? process.exit)(FORCED_QUIT);
      return;
    }
    line.done();
    say(`${sig}: ${o.stopping} (again to quit at once)`);
    abort.abort(new Error(`interrupted by ${sig}`));
    o.onInterrupt?.(sig);
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const secrets = o.secrets ?? [];
  return {
    signal: abort.signal,
    started,
    say,
    update: (l) => line.update(head() + redact(l)),
    done: () => line.done(),
    leaves: (what) => {
      leftBehind = what;
    },
    errorOf: (err) =>
      abort.signal.aborted
        ? `interrupted: ${(abort.signal.reason as Error)?.message ?? abort.signal.reason}`
        : ((err as Error)?.message ?? String(err)),
    finish: async (record, f) => {
      line.done();
      return await finishRun(record, { ...f, secrets, started });
    },
    [Symbol.dispose]: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}

/** Writes the run directory (record redacted and sanitised), prints the summary (or verdict.json), returns the exit code. */
export async function finishRun(
  record: RunRecord,
  o: {
    out: string;
    json?: boolean;
    secrets: readonly (string | null | undefined)[];
    started: number;
    ledger?: LineSource | null;
    /** Called with the run directory and the record as written (e.g. to add the run to the history). */
    onWritten?: (dir: string, record: RunRecord) => void;
  },
): Promise<number> {
  const safe = safeDeep(redactDeep(record, redactor(o.secrets)));
  const { dir } = await createRunDirectory(o.out, safe.command, new Date(o.started));
  const files = await writeRun(dir, safe, o.ledger ?? null);
  o.onWritten?.(dir, safe);
  if (o.json) process.stdout.write(renderJson(safe));
  else printRunSummary(safe, files.reports.html);
  return exitCodeOf(safe.verdict);
}
