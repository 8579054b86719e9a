/**
 * The run-level check "no worse than history": the run's experiments against the last N comparable
 * runs of the run history (reports/history.ts). Asked for with `--against-history`; fewer than N
 * comparable runs make it INCONCLUSIVE (never PASS), saying how many more are needed.
 */
import { combine } from '../reports/gates.ts';
import { historyGates, RunHistory, type HistoryGateOptions } from '../reports/history.ts';
import type { RunRecord } from '../reports/run-record.ts';
import type { CheckResult } from './runner.ts';

export function noWorseThanHistory(historyPath: string, record: RunRecord, o: HistoryGateOptions): CheckResult {
  const startedAt = Date.now();
  const description = `every experiment's figures (failed requests, p99 per version, drain and rollout times, seconds without a ready endpoint) against the last ${o.runs} comparable runs in ${historyPath}`;
  try {
    using history = RunHistory.open(historyPath);
    const gates = historyGates(history, record, o);
    return {
      name: 'no worse than history',
      kind: 'gate',
      description,
      verdict: combine(gates),
      gates,
      error: null,
      evidence: null,
      startedAt,
      endedAt: Date.now(),
    };
  } catch (err) {
    return {
      name: 'no worse than history',
      kind: 'gate',
      description,
      verdict: 'ERROR',
      gates: [],
      error: (err as Error).message,
      evidence: null,
      startedAt,
      endedAt: Date.now(),
    };
  }
}
