/**
 * `ledger.ndjson.gz`: every request of a run, one JSON object a line, gzip-compressed, so that anyone
 * can recompute the verdict. A line is what `Ledger.toNdjsonLine` writes plus what the runner adds
 * when it joins the ledger with the timeline: `check` (the CheckRecord's `ledgerLabel`) and, for a
 * failed row, its `cause` and attributed `pod`.
 *
 * Both directions stream: the writer never holds the ledger as one string, the reader yields a line
 * at a time.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip, constants as zlibConstants } from 'node:zlib';
import { join } from 'node:path';
import type { LedgerNdjsonRow } from '../lib/load/ledger.ts';
import type { FailureCause } from './run-record.ts';

export const LEDGER_FILE = 'ledger.ndjson.gz';

/**
 * One ledger line of a run directory, parsed: the load engine's NDJSON row (times in epoch
 * milliseconds; `error` read back as text) plus what the run record joined to it.
 */
export interface LedgerLine extends Omit<LedgerNdjsonRow, 'error'> {
  error: string | null;
  /** The check the row belongs to (its CheckRecord's `ledgerLabel`). */
  check?: string | null;
  /** Failed rows: why (one of FAILURE_CAUSES). */
  cause?: FailureCause | null;
  /** Failed rows: the pod it was put on (response header or proxy record), null when unknown. */
  pod?: string | null;
}

export type LineSource = AsyncIterable<string> | Iterable<string>;

/**
 * Writes `lines` (one JSON object each, with or without a trailing newline) gzip-compressed to
 * `path`, batching small writes. `onLine` sees every line as it passes (the HTML report's failure
 * table is collected this way, in the same single pass). Returns the number of lines written.
 */
export async function writeLedgerGz(path: string, lines: LineSource, onLine?: (line: string) => void): Promise<number> {
  let count = 0;
  async function* batches(): AsyncGenerator<string> {
    let buf = '';
    for await (let line of lines as AsyncIterable<string>) {
      if (line.endsWith('\n')) line = line.slice(0, -1);
      if (line.length === 0) continue;
      if (line.includes('\n')) throw new Error(`ledger line ${count + 1} holds a newline: one JSON object per line, please`);
      onLine?.(line);
      count++;
      buf += line + '\n';
      if (buf.length >= 1 << 16) {
        yield buf;
        buf = '';
      }
    }
    if (buf) yield buf;
  }
  await pipeline(Readable.from(batches()), createGzip({ level: zlibConstants.Z_DEFAULT_COMPRESSION }), createWriteStream(path));
  return count;
}

/** The raw lines of a gzip'd NDJSON file, streamed (a corrupt or truncated file rejects). */
export async function* readLedgerLines(path: string): AsyncGenerator<string> {
  const file = createReadStream(path);
  const gunzip = createGunzip();
  // pipe() does not forward the file's own errors (ENOENT, EACCES) to the gunzip stream: do it here.
  file.on('error', (err) => gunzip.destroy(err));
  file.pipe(gunzip);
  gunzip.setEncoding('utf8');
  let rest = '';
  try {
    for await (const chunk of gunzip as AsyncIterable<string>) {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop()!;
      for (const p of parts) if (p.length) yield p;
    }
  } finally {
    file.destroy();
    gunzip.destroy();
  }
  if (rest.length) yield rest;
}

/** The parsed lines of a run directory's ledger. */
export async function* readLedger(runDir: string): AsyncGenerator<LedgerLine> {
  let n = 0;
  for await (const line of readLedgerLines(join(runDir, LEDGER_FILE))) {
    n++;
    try {
      yield JSON.parse(line) as LedgerLine;
    } catch (err) {
      throw new Error(`${join(runDir, LEDGER_FILE)}: line ${n} is not JSON (${(err as Error).message})`);
    }
  }
}
