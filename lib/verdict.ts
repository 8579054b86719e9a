/**
 * The four outcomes of every judgement the harness makes, their order and their exit codes: the one
 * place for them. It sits at the bottom of the layers because everything judges, from the load
 * engine (a threshold breached) to the post-deploy gate.
 *
 * Never fail-open: missing data, too few requests or too little load is INCONCLUSIVE, a broken
 * measurement or a crashed run is ERROR, and only a run with enough evidence and no failure is PASS.
 */
export type Verdict = 'PASS' | 'FAIL' | 'INCONCLUSIVE' | 'ERROR';

export const VERDICTS: readonly Verdict[] = ['PASS', 'INCONCLUSIVE', 'FAIL', 'ERROR'];

/** Worst-of order (argo-rollouts' analysis has the same explicit order): PASS < INCONCLUSIVE < FAIL < ERROR. */
const RANK: Record<Verdict, number> = { PASS: 0, INCONCLUSIVE: 1, FAIL: 2, ERROR: 3 };

export function rank(v: Verdict): number {
  return RANK[v];
}

/** The worst of several verdicts; nothing judged at all is INCONCLUSIVE, never PASS. */
export function worst<V extends Verdict>(verdicts: Iterable<V>): V | 'INCONCLUSIVE' {
  let out: V | undefined;
  for (const v of verdicts) if (out === undefined || RANK[v] > RANK[out]) out = v;
  return out ?? 'INCONCLUSIVE';
}

/**
 * Exit codes of every `verdict` command and of the load agent. CI treats anything but 0 as
 * "do not promote"; the codes are stable because pipelines branch on them.
 */
export const ExitCode = {
  PASS: 0,
  FAIL: 1,
  INCONCLUSIVE: 2,
  ERROR: 3,
  /** Bad flags or bad configuration (sysexits EX_USAGE). */
  USAGE: 64,
} as const;

export function exitCodeOf(v: Verdict): number {
  return ExitCode[v];
}

export function isVerdict(v: unknown): v is Verdict {
  return typeof v === 'string' && v in RANK;
}
