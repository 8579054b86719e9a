/**
 * What every renderer says about a check's failures in one line: the top cause (with its largest
 * version × route cell and the reason of its earliest example), and a WARNING when `unknown` covers
 * more than 1 % of the failures (the causes do not explain the run; the ledger must be read).
 */
import type { CheckRecord, FailureGroup } from './run-record.ts';

/** `unknown` above this share of a check's failures is a warning in every summary. */
export const UNKNOWN_WARNING_SHARE = 0.01;

const int = (n: number) => n.toLocaleString('en-US');
const pct = (x: number) => `${(x * 100).toFixed(x < 0.1 ? 1 : 0)} %`;

export interface TopCause {
  group: FailureGroup;
  /** Failures of the check. */
  total: number;
  /** One line: `contract-break: 4,239 of 4,239 failures (100 %), mostly v2 · POST /api/v1/licenses/heartbeat (4,239): <reason>`. */
  line: string;
}

/** The cause with the most failures of the check (ties: rule order, as the record lists them), or null without failures. */
export function topCause(c: CheckRecord): TopCause | null {
  if (!c.failures.length) return null;
  const total = c.failures.reduce((s, f) => s + f.count, 0);
  const group = c.failures.reduce((a, b) => (b.count > a.count ? b : a));
  const cell = group.breakdown?.[0];
  const where = cell ? `, mostly ${cell.version ?? 'no version'} · ${cell.route} (${int(cell.count)})` : '';
  const reason = group.examples[0]?.reason;
  return {
    group,
    total,
    line: `${group.cause}: ${int(group.count)} of ${int(total)} failures (${pct(group.count / total)})${where}${reason ? `: ${reason}` : ''}`,
  };
}

/** The warning when `unknown` covers more than 1 % of the check's failures, else null. */
export function unknownWarning(c: CheckRecord): string | null {
  const total = c.failures.reduce((s, f) => s + f.count, 0);
  const unknown = c.failures.find((f) => f.cause === 'unknown')?.count ?? 0;
  if (!total || unknown / total <= UNKNOWN_WARNING_SHARE) return null;
  return `${int(unknown)} of ${int(total)} failures (${pct(unknown / total)}) have no known cause (unknown): no rule explains them, so this verdict's evidence is incomplete; read their reasons and the ledger`;
}
