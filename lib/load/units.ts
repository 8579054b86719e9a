/**
 * k6-style durations ("30s", "1m30s", "250ms", "2h") and rates ("500/s", "30000/m", "500") as plain
 * numbers: durations in milliseconds, rates in requests per second.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/** Parses "30s", "1m30s", "1.5s", "250ms", "2h"; a bare number is milliseconds (k6 does the same). */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0)
      throw new RangeError(`duration must be a non-negative number of milliseconds, got ${text}`);
    return text;
  }
  const s = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(s)) return Number(s);
  let total = 0;
  let pos = 0;
  PART.lastIndex = 0;
  while (pos < s.length) {
    PART.lastIndex = pos;
    const m = PART.exec(s);
    if (!m) throw new RangeError(`"${text}" is not a duration (examples: 500ms, 30s, 1m30s, 2h)`);
    total += Number(m[1]) * UNIT_MS[m[2]];
    pos = PART.lastIndex;
  }
  if (pos === 0) throw new RangeError(`"${text}" is not a duration (examples: 500ms, 30s, 1m30s, 2h)`);
  return total;
}

/** Formats milliseconds the way people write them: 1.5s, 250ms, 2m5s. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1) return `${(ms * 1000).toFixed(0)}µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1).replace(/\.?0+$/, '')}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms - m * 60_000) / 1000);
  return s ? `${m}m${s}s` : `${m}m`;
}

/**
 * Parses a rate: "500/s", "500/1s", "30000/m", "10/100ms", or a bare number (per second).
 * Returns requests per second.
 */
export function parseRate(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text <= 0) throw new RangeError(`rate must be a positive number, got ${text}`);
    return text;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(\d*(?:\.\d+)?)\s*(ms|s|m|h))?\s*$/.exec(text);
  if (!m) throw new RangeError(`"${text}" is not a rate (examples: 500/s, 30000/m, 500)`);
  const count = Number(m[1]);
  const unitMs = m[3] ? (m[2] ? Number(m[2]) : 1) * UNIT_MS[m[3]] : 1000;
  const perSecond = (count * 1000) / unitMs;
  if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError(`rate "${text}" must be positive`);
  return perSecond;
}
