/**
 * Wall-clock time in an IANA time zone, with nothing but `Intl.DateTimeFormat` (Node 24 has no
 * `Temporal`: `typeof Temporal` is "undefined" there). Two directions:
 *
 * - an instant → the wall clock there (`wallAt`), by formatToParts;
 * - a wall clock → the instant (`instantOf`), with Temporal's "compatible" disambiguation: a time
 *   that does not exist (skipped by a spring-forward gap) moves forward by the gap's length, a time
 *   that exists twice (repeated by a fall-back overlap) is the earlier one. This is
 *   Temporal.ZonedDateTime.from(..., {disambiguation: 'compatible'}) and RFC 5545's rule for
 *   DTSTART in a gap.
 *
 * The offsets either side of the wall time are read 24 h before and after it, which is exact as long
 * as a zone changes its offset at most once within a day (true of every zone in the tz database).
 */

export interface WallTime {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
}

/** 0 = Monday … 6 = Sunday (ISO order). */
export type Weekday = 0 | 1 | 2 | 3 | 4 | 5 | 6;

const formats = new Map<string, Intl.DateTimeFormat>();

function formatFor(timeZone: string): Intl.DateTimeFormat {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(timeZone, f);
  }
  return f;
}

/** Is this a time zone the runtime's tz database knows (e.g. Europe/Berlin, America/New_York, UTC)? */
export function isValidTimeZone(timeZone: string): boolean {
  if (!timeZone || timeZone !== timeZone.trim()) return false;
  try {
    formatFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

interface WallSeconds extends WallTime {
  second: number;
}

function wallSecondsAt(ms: number, timeZone: string): WallSeconds {
  const parts = formatFor(timeZone).formatToParts(new Date(ms));
  const get = (t: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === t)!.value);
  return {
    year: get('year'),
    month: get('month'),
    day: get('day'),
    hour: get('hour') % 24,
    minute: get('minute'),
    second: get('second'),
  };
}

/** The wall clock in `timeZone` at the instant `ms`. */
export function wallAt(ms: number, timeZone: string): WallTime {
  const { second: _s, ...w } = wallSecondsAt(ms, timeZone);
  return w;
}

/** The zone's offset from UTC at the instant, ms (e.g. +3,600,000 for CET). */
export function offsetAt(ms: number, timeZone: string): number {
  const w = wallSecondsAt(ms, timeZone);
  const whole = Math.floor(ms / 1000) * 1000;
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - whole;
}

/** The wall time as if it were UTC, ms: a plain number to do calendar arithmetic with. */
export function wallMs(w: WallTime): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute);
}

/** The wall time `days` calendar days later (month and year carried; time of day kept). */
export function addDays(w: WallTime, days: number): WallTime {
  const d = new Date(Date.UTC(w.year, w.month - 1, w.day + days, w.hour, w.minute));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: w.hour, minute: w.minute };
}

/** Weekday of a calendar date (0 = Monday). */
export function weekdayOf(w: Pick<WallTime, 'year' | 'month' | 'day'>): Weekday {
  return ((new Date(Date.UTC(w.year, w.month - 1, w.day)).getUTCDay() + 6) % 7) as Weekday;
}

const sameWall = (a: WallTime, b: WallTime) =>
  a.year === b.year && a.month === b.month && a.day === b.day && a.hour === b.hour && a.minute === b.minute;

/** The instant of a wall time in `timeZone` ("compatible": a skipped time moves forward, a repeated one is the earlier). */
export function instantOf(w: WallTime, timeZone: string): number {
  const local = wallMs(w);
  const before = offsetAt(local - 86_400_000, timeZone);
  const after = offsetAt(local + 86_400_000, timeZone);
  const candidates = [...new Set([local - before, local - after])]
    .filter((t) => sameWall(wallAt(t, timeZone), w))
    .sort((a, b) => a - b);
  if (candidates.length) return candidates[0];
  // In a gap (spring forward): read with the offset before the transition, which lands after it
  // by the same distance the wall time was past the gap's start.
  return local - before;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `+02:00` */
export function offsetText(offsetMs: number): string {
  const m = Math.round(offsetMs / 60_000);
  const a = Math.abs(m);
  return `${m < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

const DAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** `Mon 2026-03-30 09:00 +02:00 (Europe/Berlin)`: an instant as a person in that zone reads it. */
export function formatInZone(ms: number, timeZone: string): string {
  const w = wallAt(ms, timeZone);
  return `${DAY_NAMES[weekdayOf(w)]} ${w.year}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)} ${offsetText(offsetAt(ms, timeZone))} (${timeZone})`;
}
