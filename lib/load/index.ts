/**
 * The load engine's public API. Later experiments (rollout under load, pod kill) call it like this:
 *
 *   const run = await startLoad({ url, executor: { executor: 'constant-arrival-rate', rate: 200, duration: '60s' },
 *     thresholds: { http_req_failed: ['rate<0.001'] }, onProgress: (p) => ... });
 *   ... roll out, kill a pod ...            // run.progress() any time, run.abort() to stop early
 *   const { ledger, summary, assessment } = await run.result;
 */
export {
  startLoad,
  runLoad,
  type LoadOptions,
  type LoadRun,
  type LoadResult,
  type Progress,
  type IdentityHeaders,
} from './engine.ts';
export {
  defineScenario,
  singleRequest,
  type Scenario,
  type Flow,
  type Step,
  type StepResponse,
  type IterationContext,
} from './scenario.ts';
export { executorNames, planExecutor, type ExecutorConfig, type ExecutorName, type Plan } from './executors.ts';
export { Ledger, Outcome, type LedgerRow, type OutcomeName } from './ledger.ts';
export { ErrorClass, errorClassName, type ErrorClassName } from './error-class.ts';
export {
  parseThresholds,
  parseThresholdFlag,
  type ThresholdConfig,
  type ThresholdResult,
  ThresholdSyntaxError,
} from './thresholds.ts';
export {
  vetTarget,
  TargetNotAllowedError,
  DEFAULT_REMOTE_RATE_CAP,
  type TargetPolicy,
  type VettedTarget,
} from './target-guard.ts';
export { assess, type Assessment, type LoadVerdict } from './assessment.ts';
export type { LoadSummary } from './summary.ts';
export type { SecondOfRun } from './series.ts';
export { parseDuration, parseRate, formatDuration } from './units.ts';
