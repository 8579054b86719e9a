/**
 * Deploy windows and freezes: the seed's "Production: Manual approval required, deployments during
 * business hours" as data in `verdict.config.yaml` (`deployWindows`, schema below), and a pure
 * policy that answers "may we roll forward now?" and "when next?". Rollbacks are never refused:
 * callers ask this only before something that moves a release forward.
 *
 * ```yaml
 * deployWindows:
 *   production:
 *     timeZone: America/New_York          # IANA name; windows and freeze dates are wall-clock there
 *     contexts: ["gke_*_production-*"]     # kubeconfig contexts that are this environment (globs)
 *     windows:                             # allowed; none listed: any time (freezes still apply)
 *       - { days: [mon, tue, wed, thu], from: "09:00", to: "16:00" }
 *     freezes:                             # never, whatever the windows say
 *       - { from: 2026-12-21, to: 2027-01-04, reason: year-end freeze }   # dates: whole days, inclusive
 *       - { from: "2026-11-27T18:00", to: "2026-11-28T06:00", reason: sale night }
 * ```
 *
 * A window whose `to` is at or before its `from` runs past midnight into the next day (it belongs to
 * the day it starts on). Times in a DST gap or overlap follow lib/policy/zoned-time.ts ("compatible").
 */
import { z } from 'zod';
import { addDays, formatInZone, instantOf, isValidTimeZone, wallAt, weekdayOf, type WallTime } from './zoned-time.ts';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

const timeOfDay = z
  .string()
  .regex(
    /^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$/,
    'a time of day as "HH:MM" (quoted in YAML), e.g. "09:00"; "24:00" is the end of the day',
  );

const LOCAL_OR_ABSOLUTE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})?)?$/;

function realDate(s: string): boolean {
  const m = LOCAL_OR_ABSOLUTE.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return false;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59)) return false;
  return true;
}

const dateOrTime = z
  .string()
  .refine(
    realDate,
    'a date "YYYY-MM-DD" (the whole day), a local time "YYYY-MM-DDTHH:MM" in the environment\'s time zone, or an instant with its offset ("2026-12-24T18:00+01:00")',
  );

export const deployWindowSchema = z
  .strictObject({
    days: z.array(z.enum(WEEKDAYS)).min(1, 'name at least one day, e.g. [mon, tue, wed, thu, fri]'),
    from: timeOfDay,
    to: timeOfDay,
  })
  .refine((w) => w.from !== w.to, { message: '`from` and `to` are equal: the window would be empty', path: ['to'] });

export const freezeSchema = z
  .strictObject({
    from: dateOrTime,
    to: dateOrTime,
    reason: z.string().trim().min(1, 'say why (it is shown to whoever is refused)'),
  })
  .refine((f) => !(f.from.length === 10 && f.to.length === 10) || f.from <= f.to, {
    message: '`to` is before `from`',
    path: ['to'],
  });

export const environmentPolicySchema = z.strictObject({
  timeZone: z
    .string()
    .refine(
      isValidTimeZone,
      'an IANA time zone name such as Europe/Berlin or America/New_York (see `timedatectl list-timezones`)',
    ),
  /** Kubeconfig contexts that are this environment, `*` globs. */
  contexts: z.array(z.string().min(1)).default([]),
  windows: z.array(deployWindowSchema).default([]),
  freezes: z.array(freezeSchema).default([]),
});

export const deployWindowsSchema = z
  .record(
    z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'an environment name: lower-case letters, digits, dashes'),
    environmentPolicySchema,
  )
  .superRefine((envs, ctx) => {
    for (const [name, env] of Object.entries(envs))
      env.freezes.forEach((f, i) => {
        const p = freezeInterval(f, env.timeZone);
        if (p.end <= p.start)
          ctx.addIssue({
            code: 'custom',
            path: [name, 'freezes', i, 'to'],
            message: '`to` is not after `from`: the freeze would be empty',
          });
      });
  });

export type EnvironmentPolicy = z.infer<typeof environmentPolicySchema>;
export type DeployWindows = z.infer<typeof deployWindowsSchema>;
type Freeze = z.infer<typeof freezeSchema>;
type Window = z.infer<typeof deployWindowSchema>;

// ------------------------------------------------------------------ the policy

const hm = (s: string) => ({ hour: Number(s.slice(0, 2)), minute: Number(s.slice(3, 5)) });

/** A freeze's bounds as instants: a date alone is the whole day (from its start; `to` through its end). */
export function freezeInterval(f: Pick<Freeze, 'from' | 'to'>, timeZone: string): { start: number; end: number } {
  const at = (s: string, endOfDay: boolean): number => {
    const m = LOCAL_OR_ABSOLUTE.exec(s)!;
    const date = { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
    if (m[4] === undefined)
      return instantOf(endOfDay ? addDays({ ...date, hour: 0, minute: 0 }, 1) : { ...date, hour: 0, minute: 0 }, timeZone);
    if (m[7]) return Date.parse(`${s.slice(0, 10)}T${m[4]}:${m[5]}:${m[6] ?? '00'}${m[7]}`);
    return instantOf({ ...date, hour: Number(m[4]), minute: Number(m[5]) }, timeZone) + Number(m[6] ?? 0) * 1000;
  };
  return { start: at(f.from, false), end: at(f.to, true) };
}

interface Interval {
  start: number;
  end: number;
}

/** The instants a window is open that start on the local date `d`. */
function windowInterval(w: Window, d: WallTime, timeZone: string): Interval {
  const from = hm(w.from);
  const to = w.to === '24:00' ? { hour: 0, minute: 0 } : hm(w.to);
  const crosses = w.to === '24:00' || w.to <= w.from;
  const endDay = crosses ? addDays(d, 1) : d;
  return {
    start: instantOf({ ...d, ...from }, timeZone),
    end: instantOf({ ...endDay, ...to }, timeZone),
  };
}

/** Window intervals that start on local dates from `fromDay` days to `toDay` days around `at`. */
function windowIntervals(env: EnvironmentPolicy, at: number, fromDay: number, toDay: number): Interval[] {
  const today = { ...wallAt(at, env.timeZone), hour: 0, minute: 0 };
  const out: Interval[] = [];
  for (let k = fromDay; k <= toDay; k++) {
    const d = addDays(today, k);
    const day = WEEKDAYS[weekdayOf(d)];
    for (const w of env.windows) if (w.days.includes(day)) out.push(windowInterval(w, d, env.timeZone));
  }
  return out.filter((i) => i.end > i.start);
}

export interface WindowDecision {
  environment: string;
  timeZone: string;
  allowed: boolean;
  /** Why: the open window, or what is closed (a freeze and its reason, outside every window). */
  reason: string;
  /** The freeze in force, when that is why. */
  freeze: { reason: string; until: number } | null;
  /** The earliest instant at or after `at` that is allowed (= `at` when allowed now); null when none within a year. */
  nextAllowed: number | null;
  /** `nextAllowed` as a person in the zone reads it, with UTC. */
  nextAllowedText: string;
}

const HORIZON_MS = 400 * 86_400_000;

/** Is `at` allowed, and if not, when is the next allowed instant (within about a year)? */
export function checkDeployWindow(env: EnvironmentPolicy, name: string, at: number): WindowDecision {
  const freezes = env.freezes.map((f) => ({ ...freezeInterval(f, env.timeZone), reason: f.reason.trim() }));
  const freezeAt = (t: number) => freezes.filter((f) => f.start <= t && t < f.end).sort((a, b) => b.end - a.end)[0];
  const windowAt = (t: number) => windowIntervals(env, t, -1, 0).find((i) => i.start <= t && t < i.end);
  const describe = (w: Interval) => {
    const e = wallAt(w.end, env.timeZone);
    return `${formatInZone(w.start, env.timeZone)} until ${String(e.hour).padStart(2, '0')}:${String(e.minute).padStart(2, '0')}`;
  };

  let t = at;
  let next: number | null = null;
  for (let i = 0; i < 1000 && t - at <= HORIZON_MS; i++) {
    const f = freezeAt(t);
    if (f) {
      t = f.end;
      continue;
    }
    if (!env.windows.length || windowAt(t)) {
      next = t;
      break;
    }
    const starts = windowIntervals(env, t, 0, 8)
      .map((w) => w.start)
      .filter((s) => s > t);
    if (!starts.length) break;
    t = Math.min(...starts);
  }
  if (next !== null && next - at > HORIZON_MS) next = null;
  const nextText =
    next === null ? 'none within a year' : `${formatInZone(next, env.timeZone)} = ${new Date(next).toISOString().slice(0, 16)}Z`;
  const freeze = freezeAt(at);
  const open = windowAt(at);
  let reason: string;
  if (freeze) reason = `frozen: ${freeze.reason} (until ${formatInZone(freeze.end, env.timeZone)})`;
  else if (!env.windows.length) reason = 'no window is configured (any time is allowed) and no freeze is in force';
  else if (open) reason = `inside the window ${describe(open)}`;
  else
    reason = `outside every deploy window (${env.windows.map((w) => `${w.days.join(',')} ${w.from}-${w.to}`).join('; ')}, ${env.timeZone}); it is ${formatInZone(at, env.timeZone)}`;
  return {
    environment: name,
    timeZone: env.timeZone,
    allowed: next === at,
    reason,
    freeze: freeze ? { reason: freeze.reason, until: freeze.end } : null,
    nextAllowed: next,
    nextAllowedText: nextText,
  };
}

function glob(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

export class UnknownEnvironmentError extends Error {
  override name = 'UnknownEnvironmentError';
}

/**
 * The environment a command acts on: the one named (which must be configured), else the first whose
 * `contexts` match the kubeconfig context; null when none applies (no window policy for it).
 */
export function environmentFor(
  windows: DeployWindows,
  o: { environment?: string | null; context?: string | null },
): { name: string; policy: EnvironmentPolicy } | null {
  if (o.environment) {
    const policy = windows[o.environment];
    if (!policy)
      throw new UnknownEnvironmentError(
        `no deploy window is configured for environment "${o.environment}" (deployWindows.${o.environment} in the config${Object.keys(windows).length ? `; configured: ${Object.keys(windows).join(', ')}` : ': none is'})`,
      );
    return { name: o.environment, policy };
  }
  if (!o.context) return null;
  for (const [name, policy] of Object.entries(windows))
    if (policy.contexts.some((p) => glob(p).test(o.context!))) return { name, policy };
  return null;
}
