import { describe, expect, it } from 'vitest';
import { CLIENT_GO_MAX_RETRY_WAIT_MS, ReflectorBackoff } from './backoff.ts';

describe("ReflectorBackoff (client-go's reflector back-off)", () => {
  it('doubles from 800 ms to the 30 s cap, each wait jittered by up to 100 %', () => {
    let now = 0;
    const lowest = new ReflectorBackoff(
      undefined,
      () => now,
      () => 0,
    );
    const waits = Array.from({ length: 9 }, () => lowest.next());
    expect(waits).toEqual([800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000]);
    const highest = new ReflectorBackoff(
      undefined,
      () => now,
      () => 0.999,
    );
    const top = Array.from({ length: 8 }, () => highest.next());
    expect(top[0]).toBeCloseTo(1599.2, 1);
    expect(top[7]).toBeLessThan(CLIENT_GO_MAX_RETRY_WAIT_MS);
    expect(top[7]).toBeGreaterThan(59_000);
  });

  it('starts again from 800 ms once 2 minutes have passed since the last reset (not since the last success)', () => {
    let now = 0;
    const b = new ReflectorBackoff(
      undefined,
      () => now,
      () => 0,
    );
    for (let i = 0; i < 6; i++) b.next();
    now = 119_000;
    expect(b.next()).toBe(30_000);
    now = 121_000;
    expect(b.next()).toBe(800);
    expect(b.next()).toBe(1600);
  });
});
