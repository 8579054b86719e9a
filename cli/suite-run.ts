/**
 * What `verdict smoke` and `verdict probes` share: the interrupt (SIGINT/SIGTERM abort the run; the
 * cleanup still runs, and further signals are told so instead of killing it), progress lines on
 * stderr with the token redacted, and the end of every verdict command: the run directory, the
 * terminal summary (or verdict.json with --json), the verdict's exit code.
 */
import { exitCodeOf } from '../lib/verdict.ts';
import type { RunRecord } from '../reports/run-record.ts';
import { createRunDirectory, writeRun } from '../reports/run-directory.ts';
import { renderJson } from '../reports/render/json.ts';
import { printRunSummary } from '../reports/render/terminal.ts';
import { redactDeep, redactor } from '../lib/checks/redact.ts';
import { safeDeep, safeText } from '../lib/safe-text.ts';

export interface Interrupt extends Disposable {
  signal: AbortSignal;
}

/**
 * Aborts `signal` on the first SIGINT or SIGTERM. The handlers stay until disposed, so a second
 * Ctrl-C during the cleanup does not kill the process with seats still held: it is only told that
 * the cleanup is bounded and running.
 */
export function interruptOnSignals(say: (m: string) => void): Interrupt {
  const abort = new AbortController();
  const on = (sig: NodeJS.Signals) => {
    if (!abort.signal.aborted) {
      say(`${sig}: stopping; cleaning up what the run created first`);
      abort.abort(new Error(`interrupted by ${sig}`));
    } else say(`${sig}: still cleaning up (each step is bounded in time); the run ends by itself`);
  };
  const onInt = () => on('SIGINT');
  const onTerm = () => on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: abort.signal,
    [Symbol.dispose]: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}

/**
 * Progress on stderr, timed from `started`, with every secret redacted and the line sanitised
 * (lib/safe-text.ts): what a service answered cannot drive the terminal, add a line or command CI.
 */
export function progress(started: number, secrets: string[]): (m: string) => void {
  const redact = redactor(secrets);
  return (m) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${safeText(redact(m))}\n`);
}

/** Writes the run directory, prints the summary (or verdict.json), returns the exit code. */
export async function finishRun(
  record: RunRecord,
  o: { out: string; json?: boolean; secrets: string[]; started: number; ledger?: Iterable<string> | null },
): Promise<number> {
  const safe = safeDeep(redactDeep(record, redactor(o.secrets)));
  const { dir } = await createRunDirectory(o.out, safe.command, new Date(o.started));
  const files = await writeRun(dir, safe, o.ledger ?? null);
  if (o.json) process.stdout.write(renderJson(safe));
  else printRunSummary(safe, files.reports.html);
  return exitCodeOf(safe.verdict);
}
