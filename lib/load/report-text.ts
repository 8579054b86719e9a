/**
 * Human-readable text for a run: the one-line progress and the end-of-run summary table.
 */
import type { Progress, LoadResult } from './engine.ts';
import type { Trend } from './statistics.ts';
import { formatDuration } from './units.ts';
import { safeText } from '../safe-text.ts';

const fmtMs = (v: number | null | undefined) => (v === null || v === undefined ? '-' : formatDuration(v));
const int = (n: number) => n.toLocaleString('en-US');

export function progressLine(p: Progress, plannedMs: number): string {
  const target = p.targetRate !== null ? `target ${p.targetRate.toFixed(0)}/s` : `VUs ${p.targetVUs}`;
  return [
    `${formatDuration(p.elapsedMs).padStart(6)}/${formatDuration(plannedMs)}`,
    target,
    `done ${p.recentRate.toFixed(0)}/s`,
    `ok ${int(p.succeeded)}`,
    `failed ${int(p.failed)}`,
    `dropped ${int(p.dropped)}`,
    `in-flight ${p.inFlight}${p.waiting ? ` (${p.waiting} waiting)` : ''}`,
    `p99 ${fmtMs(p.p99)} (last ${fmtMs(p.recentP99)})`,
  ].join('  ');
}

function trendRow(name: string, t: Trend | null): string {
  const cols = t
    ? [t.avg, t.min, t.med, t['p(90)'], t['p(95)'], t['p(99)'], t.max].map((v) => fmtMs(v).padStart(9))
    : ['(no samples)'.padStart(9)];
  return `  ${name.padEnd(24)}${cols.join('')}`;
}

function counts(map: Record<string, number>, limit = 8): string {
  const entries = Object.entries(map);
  if (entries.length === 0) return '-';
  const shown = entries
    .slice(0, limit)
    .map(([k, v]) => `${safeText(k)}: ${int(v)}`)
    .join('   ');
  return entries.length > limit ? `${shown}   (+${entries.length - limit} more)` : shown;
}

export function summaryTable(r: LoadResult): string {
  const s = r.summary;
  const m = s.metrics;
  const lines: string[] = [];
  lines.push(
    `${s.run.executor} → ${s.run.url} (${s.run.target.kind} ${s.run.target.address}), ${s.run.connections} connections, ` +
      `ran ${formatDuration(s.run.elapsedMs)} (${s.run.stopReason})`,
  );
  lines.push('');
  const cut = s.counts.abortedByRun ? ` (${int(s.counts.abortedByRun)} cut short by the run, not judged)` : '';
  lines.push(
    `  requests    scheduled ${int(s.counts.scheduled)}   succeeded ${int(s.counts.succeeded)}   failed ${int(s.counts.failed)}${cut}   dropped ${int(s.counts.dropped)}`,
  );
  const rate =
    s.rates.target !== null
      ? `target ${s.rates.target.toFixed(1)}/s   achieved ${s.rates.achieved.toFixed(1)}/s   (${s.counts.iterations.started} of ${s.rates.planned} planned arrivals started)`
      : `achieved ${s.rates.achieved.toFixed(1)} req/s (closed model)`;
  lines.push(`  rate        ${rate}`);
  lines.push(`  failed      http_req_failed rate ${m.http_req_failed.rate === null ? '-' : m.http_req_failed.rate.toFixed(4)}`);
  lines.push('');
  lines.push(
    `  ${'timing'.padEnd(24)}${['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'].map((h) => h.padStart(9)).join('')}`,
  );
  lines.push(trendRow('http_req_duration', m.http_req_duration));
  lines.push(trendRow('http_req_blocked', m.http_req_blocked));
  lines.push(trendRow('http_req_service_time', m.http_req_service_time));
  lines.push(trendRow('schedule_delay', m.schedule_delay));
  const names = Object.entries(s.byName);
  if (names.length > 1) {
    lines.push('');
    for (const [name, n] of names)
      lines.push(
        trendRow(`{name:${name}}`.slice(0, 23), n.http_req_duration) + `   ${int(n.requests)} req, ${int(n.failed)} failed`,
      );
  }
  lines.push('');
  lines.push(`  statuses    ${counts(s.statuses)}`);
  lines.push(`  errors      ${counts(s.errors as Record<string, number>)}`);
  lines.push(`  served by   ${counts(s.servedBy)}`);
  lines.push(`  versions    ${counts(s.appVersions)}`);
  if (r.thresholds.length) {
    lines.push('');
    lines.push('  thresholds');
    for (const t of r.thresholds) {
      const mark = t.ok === true ? '✓' : t.ok === false ? '✗' : '?';
      lines.push(
        `    ${mark} ${t.metric}: ${t.expression}   observed ${t.observed === null ? 'no data' : +t.observed.toFixed(6)} (${int(t.samples)} samples)`,
      );
    }
  }
  lines.push('');
  lines.push(`  verdict     ${r.assessment.verdict}`);
  for (const reason of r.assessment.reasons) lines.push(`              - ${reason}`);
  return lines.join('\n');
}
