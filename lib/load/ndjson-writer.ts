/**
 * Streams ledger rows to an NDJSON file (or any writable) as they are recorded, one JSON object per
 * line with wall-clock times, so a crashed or killed run still leaves its evidence behind.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Ledger } from './ledger.ts';

export class LedgerNdjsonWriter {
  readonly #ledger: Ledger;
  readonly #out: Writable;
  readonly #owned: boolean;
  #error: Error | null = null;
  rowsWritten = 0;

  constructor(ledger: Ledger, target: string | Writable) {
    this.#ledger = ledger;
    this.#owned = typeof target === 'string';
    this.#out = typeof target === 'string' ? createWriteStream(target) : target;
    this.#out.on('error', (err) => {
      this.#error ??= err;
    });
  }

  /** Appends the given rows (in the order given). */
  write(rows: readonly number[]): void {
    if (rows.length === 0 || this.#error) return;
    const lines = new Array<string>(rows.length);
    for (let i = 0; i < rows.length; i++) lines[i] = this.#ledger.toNdjsonLine(rows[i]);
    this.#out.write(lines.join('\n') + '\n');
    this.rowsWritten += rows.length;
  }

  /** Flushes and (when it opened the file) closes; rejects if any write failed. */
  async close(): Promise<void> {
    if (this.#owned) {
      this.#out.end();
      if (!this.#out.writableFinished && !this.#error)
        await Promise.race([once(this.#out, 'finish'), once(this.#out, 'error')]).catch(() => {});
    }
    if (this.#error) throw this.#error;
  }
}
