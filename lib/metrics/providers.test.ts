import { describe, expect, it } from 'vitest';
import { flagName, METRIC_SOURCES, SourceUsageError } from './index.ts';

// The registry the gate's --source values, flags and help come from (lib/metrics/providers.ts).
describe('metric source providers', () => {
  it('each has a name of its own, and a flag shared by two sources means the same to both', () => {
    const names = METRIC_SOURCES.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).not.toContain('client');
    const seen = new Map<string, string>();
    for (const p of METRIC_SOURCES)
      for (const f of p.flags) {
        expect(flagName(f)).toMatch(/^[a-z][a-z0-9-]*$/);
        expect(seen.get(f.flag) ?? f.description).toBe(f.description);
        seen.set(f.flag, f.description);
      }
  });

  it('builds each source from its flags, and names the flag that is missing', async () => {
    const built = [];
    for (const p of METRIC_SOURCES) {
      expect(() => p.create({}), p.name).toThrow(SourceUsageError);
      expect(() => p.create({}), p.name).toThrow(new RegExp(`^--source ${p.name} needs --`));
      const s = p.create({
        'prometheus-url': 'http://127.0.0.1:9',
        project: 'acme',
        'gmp-url': 'http://127.0.0.1:9',
        'cloud-monitoring-endpoint': '127.0.0.1:9',
      });
      expect(s.kind).toBe(p.name);
      built.push(s);
    }
    await Promise.all(built.map((s) => s.close()));
  });
});
