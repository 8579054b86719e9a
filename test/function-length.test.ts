import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// No function over 80 lines of code (blank lines and comments not counted) in the rooms issue 20
// split: measured by oxlint's max-lines-per-function (a dev dependency), tests left out.
const ROOT = resolve(import.meta.dirname, '..');
const FOLDERS = ['experiments', 'cli', 'probes', 'lib/load/distributed'];
const MAX = 80;
const run = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-function-length-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The functions over `max` lines in `folders`, as `file:line name (n lines)`. */
async function tooLong(max: number, folders: string[]): Promise<string[]> {
  const config = join(dir, `max-${max}.json`);
  await writeFile(
    config,
    JSON.stringify({
      categories: { correctness: 'off' },
      rules: { 'eslint/max-lines-per-function': ['error', { max, skipBlankLines: true, skipComments: true, IIFEs: true }] },
    }),
  );
  const r = await run(
    join(ROOT, 'node_modules/.bin/oxlint'),
    ['-c', config, '--ignore-pattern', '**/*.test.ts', '--format', 'json', ...folders],
    { cwd: ROOT, maxBuffer: 64 << 20 },
  ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  const { diagnostics } = JSON.parse(r.stdout) as {
    diagnostics: Array<{ message: string; filename: string; labels: Array<{ span: { line: number } }> }>;
  };
  return diagnostics.map((d) => `${d.filename}:${d.labels[0]?.span.line} ${d.message}`);
}

describe('function length', () => {
  it(`no function over ${MAX} lines of code in ${FOLDERS.join(', ')}`, async () => {
    expect(await tooLong(MAX, FOLDERS)).toEqual([]);
  }, 60_000);

  it('the measure sees the functions (a bound of 20 finds some)', async () => {
    expect((await tooLong(20, ['experiments'])).length).toBeGreaterThan(0);
  }, 60_000);
});
