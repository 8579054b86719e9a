/**
 * Successful answers per app version, counted from a live ledger as it grows (what an experiment
 * watches to know a new release carries traffic). Rows finish roughly in order: the count covers
 * the rows up to the first one still pending and picks up the rest on the next call.
 */
import { Outcome, type Ledger } from './ledger.ts';

export class VersionAnswers {
  readonly #ledger: Ledger;
  readonly #byId = new Map<number, number>();
  #scanned = 0;

  constructor(ledger: Ledger) {
    this.#ledger = ledger;
  }

  #scan(): void {
    const l = this.#ledger;
    for (; this.#scanned < l.length && l.outcome(this.#scanned) !== Outcome.pending; this.#scanned++) {
      if (l.outcome(this.#scanned) === Outcome.succeeded) {
        const v = l.appVersionId(this.#scanned);
        this.#byId.set(v, (this.#byId.get(v) ?? 0) + 1);
      }
    }
  }

  /** Successful answers that named `version` so far. */
  of(version: string): number {
    this.#scan();
    for (const [id, n] of this.#byId) if (this.#ledger.appVersions.value(id) === version) return n;
    return 0;
  }

  /** Every version's successful answers so far (answers without a version are left out). */
  all(): Record<string, number> {
    this.#scan();
    const out: Record<string, number> = {};
    for (const [id, n] of this.#byId) {
      const v = this.#ledger.appVersions.value(id);
      if (v) out[v] = n;
    }
    return out;
  }
}
