/**
 * One report format of a run directory (grafana/k6's `output/` shape: one small interface, one file
 * per format, one list in ./index.ts that the run directory and `verdict report` both read).
 */
import type { RunRecord } from '../run-record.ts';

/** Gathers what a format needs from the ledger's NDJSON lines as they stream past, once. */
export interface LedgerReader<L> {
  add(line: string): void;
  result(): L;
}

export interface ReportRenderer<F extends string = string, L = void> {
  /** Its name for `verdict report --format`. */
  readonly format: F;
  /** The file it writes in the run directory. */
  readonly file: string;
  /**
   * Only for a format that shows single requests: a reader fed every line of the ledger in the pass
   * that writes (or reads back) ledger.ndjson.gz. Absent: the record is all it needs, and
   * `verdict report` does not read the ledger for it.
   */
  readLedger?(record: RunRecord): LedgerReader<L>;
  /** The file's text: a pure function of the record (validated and sanitised by the caller) and the reader's result. */
  render(record: RunRecord, fromLedger: L): string;
}
