import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { podKillRun } from '../reports/testing/synthetic.ts';
import { noWorseThanHistory } from './history-gate.ts';

const dir = mkdtempSync(join(tmpdir(), 'verdict-history-gate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the run-level check "no worse than history"', () => {
  it('INCONCLUSIVE on a new history (never PASS), one gate per experiment', () => {
    const { record } = podKillRun();
    const c = noWorseThanHistory(join(dir, 'new', 'history.sqlite'), record, { runs: 10 });
    expect(c).toMatchObject({ name: 'no worse than history', kind: 'gate', verdict: 'INCONCLUSIVE', error: null });
    expect(c.gates.map((g) => [g.name, g.verdict])).toEqual([['pod-kill: no worse than history', 'INCONCLUSIVE']]);
    expect(c.gates[0].evidence).toContain('(10 needed: 10 more)');
  });

  it('a history that cannot be read is an ERROR naming the file and the fix', () => {
    const bad = join(dir, 'bad.sqlite');
    writeFileSync(bad, 'x'.repeat(200));
    const c = noWorseThanHistory(bad, podKillRun().record, { runs: 10 });
    expect(c.verdict).toBe('ERROR');
    expect(c.error).toMatch(/bad\.sqlite is not a verdict run history .*give another --history path/);
  });
});
