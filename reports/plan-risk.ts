/**
 * `verdict plan-risk`'s judgement as checks of the `verdict/v1` record: one check per risk class
 * (high, then medium — a stateful resource destroyed or replaced — then low), a gate per resource
 * change. PASS when nothing at or above `failOn` (default high) is in the plan, or when someone
 * approved it (`--approved-by`, recorded in the gates and in the record's `approvals`); FAIL when
 * such a change has no approval; ERROR when OpenTofu said the plan itself errored (it is incomplete,
 * so it is never PASS). An empty plan PASSes and says it is empty.
 */
import type { PlanClassification, ClassifiedChange, Risk } from '../lib/policy/plan-risk.ts';
import { riskAtLeast } from '../lib/policy/plan-risk.ts';
import type { Verdict } from '../lib/verdict.ts';
import { worst } from '../lib/verdict.ts';
import type { CheckRecord, GateRecord } from './run-record.ts';

export interface PlanRiskJudgement {
  checks: CheckRecord[];
  verdict: Verdict;
  headline: string;
}

export interface PlanRiskJudgeOptions {
  /** Who approved the high-risk changes (null: nobody). */
  approvedBy: string | null;
  /** The lowest risk that needs an approval. */
  failOn: Extract<Risk, 'high' | 'medium'>;
  /** The plan said `errored: true`. */
  errored: boolean;
  /** Where the plan came from, for the evidence. */
  source: string;
  /** How it was read and its format, e.g. `format 1.2, read with tofu show -json`. */
  provenance?: string;
  at: number;
}

const CLASS: Record<Risk, { name: string; description: string }> = {
  high: {
    name: 'high-risk changes',
    description:
      "The seed's high-risk changes (database instance changes, GKE version upgrades, network configuration changes, key deletion or rotation) by the plan-risk rules: each needs an extra approval.",
  },
  medium: {
    name: 'stateful destroy or replace',
    description: 'Stateful resources the plan destroys or replaces: what they hold is gone unless restored.',
  },
  low: { name: 'other changes', description: 'Every other change of the plan.' },
};

const n = (x: number, one: string, many = `${one}s`) => `${x} ${x === 1 ? one : many}`;

function evidenceOf(c: ClassifiedChange): string {
  const parts: string[] = [`${c.risk.toUpperCase()}: ${c.kind} ${c.type}${c.deposed ? ` (deposed object ${c.deposed})` : ''}`];
  if (c.rules.length) parts.push(c.rules.map((r) => `${r.why} [rule ${r.id}]`).join('; '));
  else parts.push('no rule matched');
  if (c.watched.length)
    parts.push(c.watched.map((w) => `${w.path}: ${w.before ?? '(none)'} → ${w.after ?? '(none)'}`).join(', '));
  if (c.replacePaths.length) parts.push(`replaced because of ${c.replacePaths.join(', ')}`);
  if (c.actionReason) parts.push(`reason: ${c.actionReason}`);
  if (c.kind === 'update' && c.changedPathCount && !c.watched.length)
    parts.push(
      `changes ${c.changedPaths.slice(0, 8).join(', ')}${c.changedPathCount > 8 ? ` and ${c.changedPathCount - 8} more` : ''}`,
    );
  return parts.join(' · ');
}

function gateOf(c: ClassifiedChange, o: PlanRiskJudgeOptions): GateRecord {
  const needs = riskAtLeast(c.risk, o.failOn);
  const verdict: Verdict = needs && !o.approvedBy ? 'FAIL' : 'PASS';
  const approval = needs ? (o.approvedBy ? ` · approved by ${o.approvedBy}` : ' · needs an approval (--approved-by)') : '';
  return {
    name: c.address,
    verdict,
    evidence: evidenceOf(c) + approval,
    observed: {
      risk: c.risk,
      action: c.kind,
      actions: c.actions.join(','),
      type: c.type,
      rules: c.rules.map((r) => r.id).join(',') || null,
      changed_paths: c.changedPathCount,
      replace_paths: c.replacePaths.join(' ') || null,
      action_reason: c.actionReason,
      approved_by: needs ? o.approvedBy : null,
    },
  };
}

/** The checks, verdict and headline of a classified plan. */
export function judgePlan(k: PlanClassification, o: PlanRiskJudgeOptions): PlanRiskJudgement {
  const iso = new Date(o.at).toISOString();
  const check = (name: string, description: string, gates: GateRecord[], error: string | null = null): CheckRecord => ({
    name,
    kind: 'plan',
    verdict: error ? 'ERROR' : worst(gates.map((g) => g.verdict)),
    description,
    startedAt: iso,
    endedAt: iso,
    error,
    gates,
    requests: null,
    failures: [],
    latency: null,
    series: [],
    timeline: [],
    ledgerLabel: null,
  });
  const checks: CheckRecord[] = [];
  const left = [
    k.noOp ? n(k.noOp, 'unchanged resource') : null,
    k.reads ? n(k.reads, 'data source read', 'data sources read') : null,
    k.drift ? `${n(k.drift, 'resource')} drifted outside OpenTofu (not changed by this plan)` : null,
  ].filter(Boolean);
  const summary = `${n(k.changes.length, 'change')} (${k.byRisk.high} high, ${k.byRisk.medium} medium, ${k.byRisk.low} low)${left.length ? `; ${left.join(', ')}` : ''}`;
  if (o.errored)
    checks.push(
      check('plan complete', 'OpenTofu finished planning without errors.', [
        {
          name: 'plan complete',
          verdict: 'ERROR',
          evidence: `${o.source} says errored: true: planning stopped with an error, so the plan is incomplete and cannot be judged (fix the error tofu plan printed, then plan again)`,
          observed: { errored: true },
        },
      ]),
    );
  for (const risk of ['high', 'medium', 'low'] as const) {
    const these = k.changes.filter((c) => c.risk === risk);
    if (!these.length && risk !== 'high') continue;
    const gates = these.map((c) => gateOf(c, o));
    if (!these.length)
      gates.push({
        name: 'no high-risk change',
        verdict: 'PASS',
        evidence: k.changes.length
          ? `no high-risk rule matches any of the plan's changes (${n(k.changes.length, 'change')})`
          : `the plan changes nothing${left.length ? ` (${left.join(', ')})` : ''}`,
        observed: { changes: k.changes.length },
      });
    const from = risk === 'high' ? ` Plan: ${o.source}${o.provenance ? ` (${o.provenance})` : ''}.` : '';
    checks.push(check(CLASS[risk].name, CLASS[risk].description + from, gates));
  }
  const needing = k.changes.filter((c) => riskAtLeast(c.risk, o.failOn));
  if (needing.length && o.approvedBy)
    checks
      .find((c) => c.name === CLASS.high.name)!
      .gates.push({
        name: 'approval',
        verdict: 'PASS',
        evidence: `${n(needing.length, 'change')} at or above ${o.failOn} risk approved by ${o.approvedBy}`,
        observed: { approved_by: o.approvedBy, approved_changes: needing.length },
      });
  const verdict = worst(checks.map((c) => c.verdict));
  const names = needing
    .slice(0, 4)
    .map((c) => `${c.kind} ${c.address}`)
    .join(', ');
  const more = needing.length > 4 ? ', …' : '';
  const what =
    o.failOn === 'high' ? n(needing.length, 'high-risk change') : `${n(needing.length, 'change')} of medium or high risk`;
  let headline: string;
  if (o.errored) headline = `ERROR: the plan errored (incomplete); ${summary}`;
  else if (!k.changes.length) headline = `PASS: the plan changes nothing${left.length ? ` (${left.join(', ')})` : ''}`;
  else if (!needing.length) headline = `PASS: ${summary}; nothing needs an approval`;
  else if (o.approvedBy) headline = `PASS: ${what} approved by ${o.approvedBy} (${names}${more}); ${summary}`;
  else headline = `FAIL: ${what} without approval (${names}${more}); ${summary}`;
  return { checks, verdict, headline };
}
