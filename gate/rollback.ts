/**
 * The gate's pure decisions about time and the rollback, apart from the cluster so they can be
 * tested without one: how long a gate run can take, whether the token outlives it, what a
 * rollback's outcome is (done and verified, done but not verifiable, failed) and how it is said.
 */
import { spell, tokenExpiresAt } from '../lib/checks/token.ts';
import type { Verdict } from '../lib/verdict.ts';
import type { CheckRecord, GateRecord } from '../reports/run-record.ts';

/** `verdict gate`'s defaults (the production pipeline's flags). */
export const GATE_DEFAULTS = { timeoutMs: 600_000, windowMs: 600_000, sourceDelayMs: 30_000 } as const;

/**
 * Time a gate run needs besides its flags: the smoke before the window (about 15 requests, each
 * allowed 4 × its budget, and its cleanup), the window's last requests and the metric queries after
 * it, and the rollback's verification (up to 30 s for the old version to answer, then a smoke).
 */
export const GATE_ALLOWANCES = { smokeMs: 120_000, afterWindowMs: 60_000, verificationMs: 60_000 } as const;

export interface GateTiming {
  timeoutMs: number;
  windowMs: number;
  sourceDelayMs: number;
}

/** The parts of the longest gate run, in order, for a sentence. */
export function gateRunParts(t: GateTiming): Array<[string, number]> {
  return [
    ['rollout', t.timeoutMs],
    ['smoke', GATE_ALLOWANCES.smokeMs],
    ['window', t.windowMs],
    ['after the window', GATE_ALLOWANCES.afterWindowMs],
    ['source delay', t.sourceDelayMs],
    ['rollback', t.timeoutMs],
    ['its verification', GATE_ALLOWANCES.verificationMs],
  ];
}

/** The longest a gate run can take: a rollout and a rollback each up to --timeout, the window, the delay and the allowances. */
export function longestGateRunMs(t: GateTiming): number {
  return gateRunParts(t).reduce((n, [, ms]) => n + ms, 0);
}

/**
 * `verdict token`'s default lifetime, s: the longest gate run with the default flags (34 min 30 s)
 * and 5 minutes between minting the token and starting the gate, rounded up to 5 minutes: 40 min.
 */
export const DEFAULT_TOKEN_TTL_S = Math.ceil((longestGateRunMs(GATE_DEFAULTS) + 300_000) / 300_000) * 300;

/**
 * A warning when the token (a JWT, its `exp` read without verifying) expires before the gate run
 * can end; null when it outlives it, or when its expiry cannot be told (not a JWT, no `exp`).
 */
export function tokenLifetimeWarning(token: string | null, t: GateTiming & { now: number }): string | null {
  const expires = tokenExpiresAt(token);
  if (expires === null) return null;
  const longest = longestGateRunMs(t);
  const at = new Date(expires).toISOString().replace(/\.\d+Z$/, 'Z');
  const fix = `mint one that lives longer, e.g. verdict token --ttl ${Math.max(DEFAULT_TOKEN_TTL_S, Math.ceil(longest / 60_000) * 60 + 300)}`;
  if (expires <= t.now)
    return `the token expired at ${at} (${spell(t.now - expires)} ago): every check that needs it will be refused, and a rollback could not be verified; ${fix}`;
  if (expires >= t.now + longest) return null;
  const parts = gateRunParts(t)
    .map(([what, ms]) => `${what} ${spell(ms)}`)
    .join(' + ');
  return (
    `the token expires at ${at}, in ${spell(expires - t.now)}, before this gate can end (up to ${spell(longest)}: ${parts}): ` +
    `the smoke, the load or the rollback's verification after that would get 401; ${fix}`
  );
}

/**
 * Whether every check of a smoke that did not pass failed only because the token was refused as
 * expired: the service said TOKEN_EXPIRED, or said 401 after the token's own `exp`.
 */
export function onlyTokenExpired(smoke: CheckRecord, tokenExpiredLocally: boolean): boolean {
  const bad = smoke.gates.filter((g) => g.verdict !== 'PASS');
  return (
    bad.length > 0 &&
    bad.every((g) => g.observed.token_refused === true && (g.observed.token_error === 'TOKEN_EXPIRED' || tokenExpiredLocally))
  );
}

export type RollbackAction = 'rolled-back' | 'rolled-back-unverified' | 'rollback-failed';

export interface RollbackSteps {
  /** The `rolled back` gate (the undo itself). */
  undo: GateRecord;
  /** The `rollback rolled out` gate; null when the undo did not roll back. */
  rollout: GateRecord | null;
  /** The read-only smoke after the rollback; null when it did not run. */
  verification: CheckRecord | null;
  /** The version the rollback went to, when known. */
  expectVersion?: string;
  /** When the token expires (epoch ms), null when unknown. */
  tokenExpiresAt: number | null;
  /** When the verification ran (epoch ms). */
  verifiedAt: number;
}

/**
 * The rollback check's gates and what was done: `rolled-back` when the undo, its rollout and the
 * read-only smoke all passed; `rolled-back-unverified` when the rollback worked but its smoke could
 * not verify it because the token expired (ERROR: nobody has seen the old version serve); otherwise
 * `rollback-failed`.
 */
export function rollbackOutcome(s: RollbackSteps): { gates: GateRecord[]; action: RollbackAction } {
  const gates: GateRecord[] = [s.undo, ...(s.rollout ? [s.rollout] : [])];
  let unverified = false;
  if (s.verification) {
    const v = s.verification;
    const bad = v.gates.filter((g) => g.verdict !== 'PASS');
    const expiredLocally = s.tokenExpiresAt !== null && s.tokenExpiresAt <= s.verifiedAt;
    const name = 'read-only smoke after the rollback';
    if (!bad.length && v.verdict === 'PASS') {
      gates.push(
        gate(name, 'PASS', `PASS: every read-only check passed${s.expectVersion ? `, answering ${s.expectVersion}` : ''}`),
      );
    } else if (onlyTokenExpired(v, expiredLocally)) {
      unverified = true;
      const passed = v.gates.filter((g) => g.verdict === 'PASS').map((g) => g.name);
      const when =
        s.tokenExpiresAt !== null
          ? ` at ${new Date(s.tokenExpiresAt).toISOString().replace(/\.\d+Z$/, 'Z')}, ${spell(s.verifiedAt - s.tokenExpiresAt)} before the verification`
          : '';
      gates.push(
        gate(
          name,
          'ERROR',
          `verification could not run: the token expired${when}; ${bad.map((g) => g.name).join(', ')} ${bad.length === 1 ? 'was' : 'were'} refused with 401${
            passed.length ? ` (${passed.join(', ')} passed)` : ''
          }. The rollback itself was done and rolled out; verify it with a fresh token: verdict smoke --read-only${
            s.expectVersion ? ` --expect-version ${s.expectVersion}` : ''
          } --url <the service>`,
          {
            cause: 'token-expired',
            token_expired_at: s.tokenExpiresAt === null ? null : new Date(s.tokenExpiresAt).toISOString(),
          },
        ),
      );
    } else {
      gates.push(
        gate(
          name,
          'ERROR',
          `${v.verdict}: ${bad.map((g) => `${g.name}: ${g.evidence}`).join('; ') || v.error || 'the smoke did not pass'}`,
        ),
      );
    }
  }
  const action: RollbackAction = gates.every((g) => g.verdict === 'PASS')
    ? 'rolled-back'
    : unverified && gates.slice(0, -1).every((g) => g.verdict === 'PASS') && s.rollout !== null
      ? 'rolled-back-unverified'
      : 'rollback-failed';
  return { gates, action };
}

export type GateAction = 'none' | 'held' | 'would-roll-back' | RollbackAction;

/** The gate run's headline: the run's verdict, the release's decision and what was done about it. */
export function gateHeadline(
  runVerdict: Verdict,
  r: { decision: Verdict; action: GateAction; versions: { candidate: string | null; baseline: string | null } },
): string {
  return `${runVerdict}: release ${r.versions.candidate ?? '?'} ${r.decision}; ${actionText(r.action, r.versions.baseline)}`;
}

/** What the gate did, as the headline says it. */
export function actionText(action: GateAction, baseline: string | null): string {
  return {
    none: 'nothing to do',
    'rolled-back': `rolled back to ${baseline ?? 'the previous revision'} and verified`,
    'rolled-back-unverified': 'rollback done, verification could not run: token expired',
    'rollback-failed': 'the ROLLBACK FAILED',
    held: 'held for a person to decide',
    'would-roll-back': 'would roll back (--no-rollback)',
  }[action];
}

const gate = (name: string, verdict: Verdict, evidence: string, observed: GateRecord['observed'] = {}): GateRecord => ({
  name,
  verdict,
  evidence,
  observed,
});
