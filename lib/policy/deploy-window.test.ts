import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadHarnessConfig } from '../../experiments/config.ts';
import {
  checkDeployWindow,
  deployWindowsSchema,
  environmentFor,
  environmentPolicySchema,
  UnknownEnvironmentError,
} from './deploy-window.ts';
import { formatInZone, instantOf, isValidTimeZone, offsetAt, wallAt } from './zoned-time.ts';

// 2026's transitions (tz database): Europe/Berlin CET→CEST Sun 29 Mar 02:00 (01:00Z), back Sun 25 Oct
// 03:00 CEST (01:00Z); America/New_York EST→EDT Sun 8 Mar 02:00 (07:00Z), back Sun 1 Nov 02:00 EDT (06:00Z).
const Z = (s: string) => Date.parse(s);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

describe('zoned time (Intl only)', () => {
  it('knows IANA zones and refuses others', () => {
    expect(typeof (globalThis as { Temporal?: unknown }).Temporal).toBe('undefined'); // why Intl does the work
    expect(isValidTimeZone('Europe/Berlin')).toBe(true);
    expect(isValidTimeZone('America/New_York')).toBe(true);
    expect(isValidTimeZone('UTC')).toBe(true);
    expect(isValidTimeZone('Europe/Nowhere')).toBe(false);
    expect(isValidTimeZone('')).toBe(false);
    expect(isValidTimeZone(' UTC')).toBe(false);
  });

  it('offsets either side of the transitions', () => {
    expect(offsetAt(Z('2026-03-29T00:59:59Z'), 'Europe/Berlin')).toBe(3_600_000);
    expect(offsetAt(Z('2026-03-29T01:00:00Z'), 'Europe/Berlin')).toBe(7_200_000);
    expect(offsetAt(Z('2026-11-01T05:59:59Z'), 'America/New_York')).toBe(-4 * 3_600_000);
    expect(offsetAt(Z('2026-11-01T06:00:00Z'), 'America/New_York')).toBe(-5 * 3_600_000);
  });

  it('a wall time skipped by spring-forward moves forward by the gap (Temporal "compatible")', () => {
    expect(iso(instantOf({ year: 2026, month: 3, day: 8, hour: 2, minute: 30 }, 'America/New_York'))).toBe(
      '2026-03-08T07:30:00.000Z',
    ); // 03:30 EDT
    expect(iso(instantOf({ year: 2026, month: 3, day: 29, hour: 2, minute: 30 }, 'Europe/Berlin'))).toBe(
      '2026-03-29T01:30:00.000Z',
    ); // 03:30 CEST
  });

  it('a wall time repeated by fall-back is the earlier of the two', () => {
    expect(iso(instantOf({ year: 2026, month: 11, day: 1, hour: 1, minute: 30 }, 'America/New_York'))).toBe(
      '2026-11-01T05:30:00.000Z',
    ); // EDT
    expect(iso(instantOf({ year: 2026, month: 10, day: 25, hour: 2, minute: 30 }, 'Europe/Berlin'))).toBe(
      '2026-10-25T00:30:00.000Z',
    ); // CEST
    // ...and both instants read back as the same wall time.
    expect(wallAt(Z('2026-11-01T05:30:00Z'), 'America/New_York')).toEqual(wallAt(Z('2026-11-01T06:30:00Z'), 'America/New_York'));
  });

  it('ordinary times round-trip', () => {
    for (const t of ['2026-01-15T12:34:00Z', '2026-07-01T23:59:00Z', '2026-03-08T06:59:00Z', '2026-12-31T23:00:00Z'])
      for (const tz of ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'UTC'])
        expect(iso(instantOf(wallAt(Z(t), tz), tz)), `${t} ${tz}`).toBe(new Date(t).toISOString());
    expect(formatInZone(Z('2026-03-30T07:00:00Z'), 'Europe/Berlin')).toBe('Mon 2026-03-30 09:00 +02:00 (Europe/Berlin)');
  });
});

const policy = (o: unknown) => environmentPolicySchema.parse(o);
const berlinOffice = policy({
  timeZone: 'Europe/Berlin',
  windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
});

describe('deploy windows', () => {
  it('business hours in Berlin: Friday evening is refused, next is Monday 09:00 in summer time (07:00Z, not 08:00Z)', () => {
    const d = checkDeployWindow(berlinOffice, 'production', Z('2026-03-27T17:00:00Z')); // Fri 18:00 CET
    expect(d.allowed).toBe(false);
    expect(d.reason).toMatch(/outside every deploy window .*Fri 2026-03-27 18:00 \+01:00/);
    expect(iso(d.nextAllowed)).toBe('2026-03-30T07:00:00.000Z');
    expect(d.nextAllowedText).toBe('Mon 2026-03-30 09:00 +02:00 (Europe/Berlin) = 2026-03-30T07:00Z');
  });

  it('window bounds: from is inside, to is outside', () => {
    expect(checkDeployWindow(berlinOffice, 'p', Z('2026-03-30T07:00:00Z')).allowed).toBe(true); // 09:00
    const before = checkDeployWindow(berlinOffice, 'p', Z('2026-03-30T06:59:00Z'));
    expect(before.allowed).toBe(false);
    expect(iso(before.nextAllowed)).toBe('2026-03-30T07:00:00.000Z');
    expect(checkDeployWindow(berlinOffice, 'p', Z('2026-03-30T14:59:59Z')).allowed).toBe(true); // 16:59:59
    const after = checkDeployWindow(berlinOffice, 'p', Z('2026-03-30T15:00:00Z')); // 17:00
    expect(after.allowed).toBe(false);
    expect(iso(after.nextAllowed)).toBe('2026-03-31T07:00:00.000Z');
    expect(checkDeployWindow(berlinOffice, 'p', Z('2026-03-30T07:00:00Z')).reason).toBe(
      'inside the window Mon 2026-03-30 09:00 +02:00 (Europe/Berlin) until 17:00',
    );
  });

  it('fall-back in Berlin: Monday after the change opens at 09:00 CET (08:00Z)', () => {
    const d = checkDeployWindow(berlinOffice, 'p', Z('2026-10-24T10:00:00Z')); // Saturday
    expect(iso(d.nextAllowed)).toBe('2026-10-26T08:00:00.000Z');
  });

  it('New York spring-forward: a window from 02:00 on the transition day opens at 03:00 EDT', () => {
    const nightly = policy({ timeZone: 'America/New_York', windows: [{ days: ['sun'], from: '02:00', to: '04:00' }] });
    const d = checkDeployWindow(nightly, 'p', Z('2026-03-08T06:59:00Z')); // 01:59 EST
    expect(d.allowed).toBe(false);
    expect(iso(d.nextAllowed)).toBe('2026-03-08T07:00:00.000Z'); // 03:00 EDT
    expect(checkDeployWindow(nightly, 'p', Z('2026-03-08T07:59:00Z')).allowed).toBe(true); // 03:59 EDT
    expect(checkDeployWindow(nightly, 'p', Z('2026-03-08T08:00:00Z')).allowed).toBe(false); // 04:00 EDT
  });

  it('New York fall-back: a window over the repeated hour holds for both 01:45s', () => {
    const w = policy({ timeZone: 'America/New_York', windows: [{ days: ['sun'], from: '01:30', to: '03:00' }] });
    expect(checkDeployWindow(w, 'p', Z('2026-11-01T05:45:00Z')).allowed).toBe(true); // 01:45 EDT
    expect(checkDeployWindow(w, 'p', Z('2026-11-01T06:45:00Z')).allowed).toBe(true); // 01:45 EST
    expect(checkDeployWindow(w, 'p', Z('2026-11-01T07:59:00Z')).allowed).toBe(true); // 02:59 EST
    expect(checkDeployWindow(w, 'p', Z('2026-11-01T08:00:00Z')).allowed).toBe(false); // 03:00 EST
    expect(iso(checkDeployWindow(w, 'p', Z('2026-11-01T05:00:00Z')).nextAllowed)).toBe('2026-11-01T05:30:00.000Z');
  });

  it('a window past midnight belongs to the day it starts on', () => {
    const late = policy({ timeZone: 'Europe/Berlin', windows: [{ days: ['fri'], from: '22:00', to: '02:00' }] });
    expect(checkDeployWindow(late, 'p', Z('2026-06-05T23:59:00Z')).allowed).toBe(true); // Sat 01:59 CEST
    const end = checkDeployWindow(late, 'p', Z('2026-06-06T00:00:00Z')); // Sat 02:00 CEST
    expect(end.allowed).toBe(false);
    expect(iso(end.nextAllowed)).toBe('2026-06-12T20:00:00.000Z'); // the next Friday 22:00
    expect(iso(checkDeployWindow(late, 'p', Z('2026-06-05T19:59:00Z')).nextAllowed)).toBe('2026-06-05T20:00:00.000Z');
    const whole = policy({ timeZone: 'UTC', windows: [{ days: ['sat'], from: '00:00', to: '24:00' }] });
    expect(checkDeployWindow(whole, 'p', Z('2026-06-06T23:59:59Z')).allowed).toBe(true);
    expect(iso(checkDeployWindow(whole, 'p', Z('2026-06-07T00:00:00Z')).nextAllowed)).toBe('2026-06-13T00:00:00.000Z');
  });

  it('no windows: any time, except freezes', () => {
    const any = policy({ timeZone: 'UTC' });
    const d = checkDeployWindow(any, 'staging', Z('2026-06-07T03:00:00Z'));
    expect(d.allowed).toBe(true);
    expect(d.nextAllowed).toBe(Z('2026-06-07T03:00:00Z'));
  });
});

describe('freezes', () => {
  const ny = (freezes: unknown[], windows: unknown[] = []) => policy({ timeZone: 'America/New_York', windows, freezes });

  it('a freeze across midnight holds until its end, in local time', () => {
    const p = ny([{ from: '2026-11-27T18:00', to: '2026-11-28T06:00', reason: 'sale night' }]);
    const d = checkDeployWindow(p, 'production', Z('2026-11-28T04:30:00Z')); // 23:30 EST on the 27th
    expect(d.allowed).toBe(false);
    expect(d.freeze?.reason).toBe('sale night');
    expect(d.reason).toBe('frozen: sale night (until Sat 2026-11-28 06:00 -05:00 (America/New_York))');
    expect(iso(d.nextAllowed)).toBe('2026-11-28T11:00:00.000Z');
    expect(checkDeployWindow(p, 'production', Z('2026-11-28T10:59:00Z')).allowed).toBe(false); // 05:59
    expect(checkDeployWindow(p, 'production', Z('2026-11-28T11:00:00Z')).allowed).toBe(true); // 06:00: the end is open
    expect(checkDeployWindow(p, 'production', Z('2026-11-27T22:59:00Z')).allowed).toBe(true); // 17:59, before it
  });

  it('dates alone are whole days, inclusive, and the next window after the freeze is found', () => {
    const p = policy({
      timeZone: 'Europe/Berlin',
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
      freezes: [{ from: '2026-12-21', to: '2027-01-04', reason: 'year-end freeze' }],
    });
    const d = checkDeployWindow(p, 'production', Z('2026-12-22T10:00:00Z'));
    expect(d.allowed).toBe(false);
    expect(d.reason).toMatch(/^frozen: year-end freeze \(until Tue 2027-01-05 00:00 \+01:00/);
    expect(iso(d.nextAllowed)).toBe('2027-01-05T08:00:00.000Z'); // Tue 09:00 CET, not Mon 4 Jan (frozen all day)
    expect(checkDeployWindow(p, 'production', Z('2026-12-18T10:00:00Z')).allowed).toBe(true);
  });

  it('an instant with an offset is taken as given; overlapping freezes chain', () => {
    const p = ny([
      { from: '2026-07-01T00:00Z', to: '2026-07-02T00:00Z', reason: 'a' },
      { from: '2026-07-01T20:00-04:00', to: '2026-07-03', reason: 'b' },
    ]);
    const d = checkDeployWindow(p, 'x', Z('2026-07-01T12:00:00Z'));
    expect(iso(d.nextAllowed)).toBe('2026-07-04T04:00:00.000Z'); // the end of 3 July, EDT
  });

  it('nothing allowed within a year says so', () => {
    const p = ny([{ from: '2026-01-01', to: '2027-12-31', reason: 'moratorium' }]);
    const d = checkDeployWindow(p, 'x', Z('2026-03-01T12:00:00Z'));
    expect(d.allowed).toBe(false);
    expect(d.nextAllowed).toBeNull();
    expect(d.nextAllowedText).toBe('none within a year');
  });
});

describe('the config', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const load = async (yaml: string) => {
    const d = await mkdtemp(join(tmpdir(), 'verdict-windows-'));
    dirs.push(d);
    await writeFile(join(d, 'verdict.config.yaml'), yaml);
    return loadHarnessConfig(join(d, 'verdict.config.yaml'));
  };

  it('reads windows and freezes from verdict.config.yaml', async () => {
    const { config } = await load(
      'deployWindows:\n  production:\n    timeZone: America/New_York\n    contexts: ["gke_*_production-*"]\n    windows:\n      - { days: [mon, tue, wed, thu], from: "09:00", to: "16:00" }\n    freezes:\n      - { from: 2026-12-21, to: 2027-01-04, reason: year-end freeze }\n',
    );
    expect(config.deployWindows.production.windows[0].days).toEqual(['mon', 'tue', 'wed', 'thu']);
    expect(environmentFor(config.deployWindows, { context: 'gke_acme_us-central1_production-gke' })?.name).toBe('production');
    expect(environmentFor(config.deployWindows, { context: 'gke_acme_us-central1_staging' })).toBeNull();
    expect(environmentFor(config.deployWindows, { environment: 'production', context: 'whatever' })?.name).toBe('production');
    expect(() => environmentFor(config.deployWindows, { environment: 'prod' })).toThrow(
      new UnknownEnvironmentError(
        'no deploy window is configured for environment "prod" (deployWindows.prod in the config; configured: production)',
      ),
    );
    // Without a config: no windows at all, and the defaults of everything else stay.
    expect((await loadHarnessConfig()).config.deployWindows).toEqual({});
  });

  it.each([
    ['timeZone: Europe/Nowhere\n', /deployWindows\.production\.timeZone: an IANA time zone name/],
    [
      'timeZone: UTC\n    windows: [{ days: [mon], from: "9:00", to: "17:00" }]\n',
      /deployWindows\.production\.windows\.0\.from: a time of day as "HH:MM"/,
    ],
    [
      'timeZone: UTC\n    windows: [{ days: [monday], from: "09:00", to: "17:00" }]\n',
      /deployWindows\.production\.windows\.0\.days\.0: /,
    ],
    [
      'timeZone: UTC\n    windows: [{ days: [mon], from: "09:00", to: "09:00" }]\n',
      /deployWindows\.production\.windows\.0\.to: `from` and `to` are equal/,
    ],
    [
      'timeZone: UTC\n    freezes: [{ from: 2026-02-30, to: 2026-03-02, reason: x }]\n',
      /deployWindows\.production\.freezes\.0\.from: a date "YYYY-MM-DD"/,
    ],
    [
      'timeZone: UTC\n    freezes: [{ from: 2026-03-05, to: 2026-03-02, reason: x }]\n',
      /deployWindows\.production\.freezes\.0\.to: `to` is before `from`/,
    ],
    [
      'timeZone: UTC\n    freezes: [{ from: "2026-03-05T10:00", to: "2026-03-05T09:00", reason: x }]\n',
      /deployWindows\.production\.freezes\.0\.to: `to` is not after `from`/,
    ],
    ['timeZone: UTC\n    freezes: [{ from: 2026-03-05, to: 2026-03-06 }]\n', /deployWindows\.production\.freezes\.0\.reason: /],
    ['timeZone: UTC\n    window: []\n', /deployWindows\.production: Unrecognized key: "window"/],
  ])('refuses a bad field, naming it: %s', async (body, message) => {
    await expect(load(`deployWindows:\n  production:\n    ${body}`)).rejects.toThrow(message);
  });

  it('refuses a bad environment name', async () => {
    expect(deployWindowsSchema.safeParse({ Production: { timeZone: 'UTC' } }).success).toBe(false);
  });
});
