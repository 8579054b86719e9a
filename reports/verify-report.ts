import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RolloutUnderLoadResult } from '../chaos/rollout-under-load.ts';
import { combine, errorRateGate, type Gate, type Verdict } from './gates.ts';

export interface VerifyContext {
  from: string;
  to: string;
  replicas: number;
  maxSurge: number;
  minRequests: number;
}

/** The gates of a rollout-under-load run. */
export function rolloutGates(r: RolloutUnderLoadResult, c: VerifyContext): Gate[] {
  const s = r.load.summary;
  const gates: Gate[] = [];
  gates.push(r.rollout.ok
    ? { name: 'rollout completed', verdict: 'PASS', evidence: `${c.from} → ${c.to} rolled out in ${((r.rollout.endedAt - r.rollout.startedAt) / 1000).toFixed(1)} s` }
    : { name: 'rollout completed', verdict: 'FAIL', evidence: `the rollout did not complete: ${r.rollout.error}` });
  gates.push(errorRateGate({ name: 'no failed request', failed: s.metrics.http_req_failed.fails, total: s.metrics.http_reqs.count, maxRate: 0, minRequests: c.minRequests }));
  // The experiment stops its load itself when the rollout has settled, so judge the load by what
  // ran: arrivals started against the plan, and the engine's own lateness (a busy machine's numbers
  // are not evidence).
  const target = s.rates.target ?? 0;
  const share = target > 0 ? s.rates.achieved / target : 0;
  const lateness = s.metrics.schedule_delay?.['p(99)'] ?? null;
  const loadOk = share >= 0.99 && lateness !== null && lateness <= 50;
  gates.push({ name: 'load as planned', verdict: loadOk ? 'PASS' : 'INCONCLUSIVE',
    evidence: `${s.rates.achieved.toFixed(1)} of ${target.toFixed(1)} flows/s started (${(share * 100).toFixed(1)}%, need 99%), ${s.counts.dropped} dropped; engine lateness p99 ${lateness?.toFixed(1) ?? '?'} ms (need <= 50)`,
    observed: { achieved: s.rates.achieved, target, dropped: s.counts.dropped, schedule_delay_p99_ms: lateness } });
  const a = r.versions[c.from] ?? 0;
  const b = r.versions[c.to] ?? 0;
  gates.push({ name: 'traffic crossed the rollout', verdict: a > 0 && b > 0 ? 'PASS' : 'INCONCLUSIVE',
    evidence: `${a} answers from ${c.from}, ${b} from ${c.to}${a > 0 && b > 0 ? '' : ': the load did not span the rollout, so it proves nothing about it'}`, observed: { [c.from]: a, [c.to]: b } });
  // No pod samples means no evidence: INCONCLUSIVE, never a PASS on missing data.
  const sampled = r.timelineSamples > 0;
  const capacityOk = r.minReady >= c.replicas && r.maxActive <= c.replicas + c.maxSurge;
  gates.push({ name: 'capacity held', verdict: !sampled ? 'INCONCLUSIVE' : capacityOk ? 'PASS' : 'FAIL',
    evidence: sampled
      ? `ready pods never below ${r.minReady} (required ${c.replicas}); at most ${r.maxActive} active (allowed ${c.replicas + c.maxSurge}); ${r.timelineSamples} samples`
      : 'the pods were never sampled, so capacity during the rollout is unknown',
    observed: { minReady: sampled ? r.minReady : null, maxActive: sampled ? r.maxActive : null, samples: r.timelineSamples } });
  return gates;
}

export interface VerifyReport {
  verdict: Verdict;
  generatedAt: string;
  context: VerifyContext;
  gates: Gate[];
  load: RolloutUnderLoadResult['load']['summary'];
  versions: Record<string, number>;
  failures: RolloutUnderLoadResult['failures'];
  timeline: RolloutUnderLoadResult['timeline'];
}

export function buildReport(r: RolloutUnderLoadResult, c: VerifyContext): VerifyReport {
  const gates = rolloutGates(r, c);
  return { verdict: combine(gates), generatedAt: new Date().toISOString(), context: c, gates, load: r.load.summary, versions: r.versions, failures: r.failures, timeline: r.timeline };
}

export function renderMarkdown(rep: VerifyReport): string {
  const icon: Record<Verdict, string> = { PASS: '✅', FAIL: '❌', INCONCLUSIVE: '⚠️', ERROR: '💥' };
  const lines = [
    `# ${icon[rep.verdict]} ${rep.verdict}: rollout ${rep.context.from} → ${rep.context.to} under load`,
    '',
    '| gate | verdict | evidence |', '|---|---|---|',
    ...rep.gates.map((g) => `| ${g.name} | ${icon[g.verdict]} ${g.verdict} | ${g.evidence.replaceAll('|', '\\|')} |`),
    '',
    `Requests: ${rep.load.metrics.http_reqs.count} judged, ${rep.load.metrics.http_req_failed.fails} failed, ${rep.load.counts.dropped} dropped; ` +
      `p99 ${rep.load.metrics.http_req_duration?.['p(99)']?.toFixed(1) ?? '-'} ms. Answers by version: ${Object.entries(rep.versions).map(([v, n]) => `${v} ${n}`).join(', ') || 'none'}.`,
  ];
  if (rep.failures.length) {
    lines.push('', '## Failed requests (first 20), with what their pod was doing', '', '| at | step | status / error | pod | pod history |', '|---|---|---|---|---|');
    for (const f of rep.failures.slice(0, 20)) {
      lines.push(`| ${f.at} | ${f.step} | ${f.status || ''} ${f.error ?? ''} | ${f.servedBy ?? '?'}${f.attributedBy === 'proxy-connection' ? ' (via proxy)' : ''} | ${f.podHistory.map((e) => `${e.change} ${new Date(e.at).toISOString().slice(11, 23)}`).join(', ')} |`);
    }
  }
  return lines.join('\n') + '\n';
}

export async function writeReport(dir: string, rep: VerifyReport): Promise<{ json: string; markdown: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const markdown = join(dir, 'report.md');
  await writeFile(json, JSON.stringify(rep, null, 2) + '\n');
  await writeFile(markdown, renderMarkdown(rep));
  return { json, markdown };
}
