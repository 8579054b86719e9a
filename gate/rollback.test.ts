import { SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { exitCodeOf, type Verdict } from '../lib/verdict.ts';
import type { CheckRecord, GateRecord } from '../reports/run-record.ts';
import { suiteRunRecord } from '../suites/record.ts';
import {
  DEFAULT_TOKEN_TTL_S,
  GATE_DEFAULTS,
  gateHeadline,
  longestGateRunMs,
  rollbackOutcome,
  tokenLifetimeWarning,
  type RollbackSteps,
} from './rollback.ts';

// The gate's decisions about the token and the rollback, without a cluster (issue 22, also seen:
// a never-ready release FAILed at 77.5 s and rolled back in 6.2 s, but the verification smoke got
// 401 TOKEN_EXPIRED and the run was headed "the ROLLBACK FAILED").
const NOW = Date.parse('2026-12-07T10:00:00Z');
const jwt = (expSeconds: number | null) => {
  const t = new SignJWT({ sub: 'smoke' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(Math.floor(NOW / 1000));
  if (expSeconds !== null) t.setExpirationTime(Math.floor(NOW / 1000) + expSeconds);
  return t.sign(new TextEncoder().encode('k'.repeat(32)));
};

const g = (
  name: string,
  verdict: Verdict,
  observed: GateRecord['observed'] = {},
  evidence = `${name} ${verdict}`,
): GateRecord => ({
  name,
  verdict,
  evidence,
  observed,
});
function smoke(gates: GateRecord[]): CheckRecord {
  const order: Verdict[] = ['PASS', 'INCONCLUSIVE', 'FAIL', 'ERROR'];
  const verdict = gates.reduce<Verdict>((w, x) => (order.indexOf(x.verdict) > order.indexOf(w) ? x.verdict : w), 'PASS');
  return {
    name: 'smoke',
    kind: 'suite',
    verdict,
    description: 'read-only smoke',
    startedAt: new Date(NOW).toISOString(),
    endedAt: new Date(NOW).toISOString(),
    error: null,
    gates,
    requests: null,
    failures: [],
    latency: null,
    series: [],
    timeline: [],
    ledgerLabel: null,
  };
}
const refused = (code: string | null) =>
  g(
    'heartbeat-unknown',
    'FAIL',
    { status: 401, token_refused: true, token_error: code },
    `the token was refused: POST /api/v1/licenses/heartbeat answered 401 {"error":{"code":"${code}"}}`,
  );
const readOnlyPassed = ['ready', 'metrics', 'no-token', 'bad-token', 'version'].map((n) => g(n, 'PASS'));
const steps = (verification: CheckRecord | null, o: Partial<RollbackSteps> = {}): RollbackSteps => ({
  undo: g('rolled back', 'PASS'),
  rollout: g('rollback rolled out', 'PASS'),
  verification,
  expectVersion: 'v1',
  tokenExpiresAt: NOW - 60_000,
  verifiedAt: NOW,
  ...o,
});

describe('the rollback outcome', () => {
  it('the issue\'s run: rollback done, its smoke refused with 401 TOKEN_EXPIRED: "verification could not run", ERROR, exit 3', () => {
    const out = rollbackOutcome(steps(smoke([...readOnlyPassed, refused('TOKEN_EXPIRED')])));
    expect(out.action).toBe('rolled-back-unverified');
    expect(out.gates.map((x) => [x.name, x.verdict])).toEqual([
      ['rolled back', 'PASS'],
      ['rollback rolled out', 'PASS'],
      ['read-only smoke after the rollback', 'ERROR'],
    ]);
    expect(out.gates[2].evidence).toMatch(
      /^verification could not run: the token expired at 2026-12-07T09:59:00Z, 1 min before the verification; heartbeat-unknown was refused with 401 \(ready, metrics, no-token, bad-token, version passed\)\. The rollback itself was done and rolled out; verify it with a fresh token: verdict smoke --read-only --expect-version v1/,
    );
    expect(out.gates[2].observed).toMatchObject({ cause: 'token-expired' });
    // As the command heads and exits the run: the release's FAIL, the rollback done, exit 3 (not "the ROLLBACK FAILED").
    const record = suiteRunRecord({
      command: 'gate',
      target: { kind: 'existing', name: 'c', context: 'c', serverVersion: null, url: null, endpointLagMs: null },
      checks: [
        { ...smoke([g('rollout completed', 'FAIL')]), name: 'rollout', kind: 'gate' },
        { ...smoke(out.gates), name: 'rollback', kind: 'gate' },
      ],
      startedAt: NOW - 90_000,
      endedAt: NOW,
      app: null,
    });
    const headline = gateHeadline(record.verdict, {
      decision: 'FAIL',
      action: out.action,
      versions: { candidate: 'v2', baseline: 'v1' },
    });
    expect(headline).toBe('ERROR: release v2 FAIL; rollback done, verification could not run: token expired');
    expect(headline).not.toMatch(/ROLLBACK FAILED/);
    expect(exitCodeOf(record.verdict)).toBe(3);
  });

  it("a 401 after the token's own exp counts as expired even when the service names it otherwise", () => {
    const out = rollbackOutcome(steps(smoke([...readOnlyPassed, refused('INVALID_TOKEN')])));
    expect(out.action).toBe('rolled-back-unverified');
  });

  it('a refused token that has not expired is a failed verification, as is an expired token next to a real failure', () => {
    const valid = rollbackOutcome(steps(smoke([...readOnlyPassed, refused('INVALID_TOKEN')]), { tokenExpiresAt: NOW + 60_000 }));
    expect(valid.action).toBe('rollback-failed');
    expect(valid.gates[2].evidence).toMatch(/^FAIL: heartbeat-unknown: the token was refused/);
    const broken = rollbackOutcome(steps(smoke([g('ready', 'FAIL'), ...readOnlyPassed.slice(1), refused('TOKEN_EXPIRED')])));
    expect(broken.action).toBe('rollback-failed');
    expect(
      gateHeadline('ERROR', { decision: 'FAIL', action: broken.action, versions: { candidate: 'v2', baseline: 'v1' } }),
    ).toBe('ERROR: release v2 FAIL; the ROLLBACK FAILED');
  });

  it('verified when every read-only check passed; failed when the undo or its rollout failed', () => {
    const ok = rollbackOutcome(steps(smoke(readOnlyPassed)));
    expect(ok.action).toBe('rolled-back');
    expect(ok.gates[2]).toMatchObject({ verdict: 'PASS', evidence: 'PASS: every read-only check passed, answering v1' });
    expect(gateHeadline('FAIL', { decision: 'FAIL', action: ok.action, versions: { candidate: 'v2', baseline: 'v1' } })).toBe(
      'FAIL: release v2 FAIL; rolled back to v1 and verified',
    );
    const notOut = rollbackOutcome(steps(null, { rollout: g('rollback rolled out', 'ERROR') }));
    expect(notOut.action).toBe('rollback-failed');
    const refusedUndo = rollbackOutcome(steps(null, { undo: g('rolled back', 'ERROR'), rollout: null }));
    expect(refusedUndo.action).toBe('rollback-failed');
  });
});

describe('the token against the gate run', () => {
  it("the longest gate run with the default flags, and verdict token's default lifetime that covers it", () => {
    expect(GATE_DEFAULTS).toEqual({ timeoutMs: 600_000, windowMs: 600_000, sourceDelayMs: 30_000 });
    // rollout 10 min + smoke 2 min + window 10 min + 1 min after it + source delay 30 s + rollback 10 min + verification 1 min
    expect(longestGateRunMs(GATE_DEFAULTS)).toBe(34.5 * 60_000);
    expect(DEFAULT_TOKEN_TTL_S).toBe(2400);
    expect(DEFAULT_TOKEN_TTL_S * 1000).toBeGreaterThanOrEqual(longestGateRunMs(GATE_DEFAULTS));
  });

  it("warns at the start when the token expires before the run can end (the issue's --ttl 600), not when it outlives it", async () => {
    const at = { now: NOW, ...GATE_DEFAULTS };
    expect(tokenLifetimeWarning(await jwt(600), at)).toBe(
      "the token expires at 2026-12-07T10:10:00Z, in 10 min, before this gate can end (up to 34 min 30 s: rollout 10 min + smoke 2 min + window 10 min + after the window 1 min + source delay 30 s + rollback 10 min + its verification 1 min): the smoke, the load or the rollback's verification after that would get 401; mint one that lives longer, e.g. verdict token --ttl 2400",
    );
    expect(tokenLifetimeWarning(await jwt(DEFAULT_TOKEN_TTL_S), at)).toBeNull();
    expect(tokenLifetimeWarning(await jwt(-30), at)).toMatch(/^the token expired at 2026-12-07T09:59:30Z \(30 s ago\)/);
    // A longer run needs a longer token, and the fix says how long.
    expect(tokenLifetimeWarning(await jwt(DEFAULT_TOKEN_TTL_S), { ...at, windowMs: 3_600_000 })).toMatch(/--ttl 5400$/);
    // What cannot be told is not guessed: an opaque token, a JWT without exp, none.
    expect(tokenLifetimeWarning('opaque-token-0123456789', at)).toBeNull();
    expect(tokenLifetimeWarning(await jwt(null), at)).toBeNull();
    expect(tokenLifetimeWarning(new UnsecuredJWT({}).encode(), at)).toBeNull();
    expect(tokenLifetimeWarning(null, at)).toBeNull();
  });
});
