import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseRate } from './units.ts';

describe('parseDuration', () => {
  it('reads k6 durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1500')).toBe(1500);
    expect(parseDuration(42)).toBe(42);
  });
  it('refuses what is not a duration', () => {
    for (const bad of ['', 's', '10x', '1m 30s', '-5s', 'ten seconds'])
      expect(() => parseDuration(bad), bad).toThrow(/not a duration/);
    expect(() => parseDuration(-1)).toThrow(RangeError);
  });
  it('formats for people', () => {
    expect(formatDuration(0.5)).toBe('500µs');
    expect(formatDuration(1.234)).toBe('1.23ms');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(125_000)).toBe('2m5s');
  });
});

describe('parseRate', () => {
  it('reads rates per unit', () => {
    expect(parseRate('500/s')).toBe(500);
    expect(parseRate('500')).toBe(500);
    expect(parseRate('30000/m')).toBe(500);
    expect(parseRate('10/100ms')).toBe(100);
    expect(parseRate('500/1s')).toBe(500);
  });
  it('refuses zero and nonsense', () => {
    for (const bad of ['0/s', 'fast', '/s', '5/x']) expect(() => parseRate(bad), bad).toThrow();
  });
});
