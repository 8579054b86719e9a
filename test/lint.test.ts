import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// The linter as configured (.oxlintrc.json, type-aware through tsgolint) must catch the bugs it is
// there for: a broken config or a rule switched off would let them through silently.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(ROOT, '.lint-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function lint(source: string): string {
  writeFileSync(join(dir, 'probe.ts'), source);
  copyFileSync(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'));
  try {
    execFileSync(
      join(ROOT, 'node_modules/.bin/oxlint'),
      ['--type-aware', '-c', join(ROOT, '.oxlintrc.json'), '-f', 'unix', dir],
      {
        cwd: dir,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    return '';
  } catch (err) {
    return (err as { stdout: string }).stdout;
  }
}

describe('oxlint, as configured', () => {
  it.each([
    ['a floating promise', 'async function f() {}\nexport function g() {\n  f();\n}\n', 'no-floating-promises'],
    [
      'a promise where a void callback is expected',
      'export function g() {\n  [1].forEach(async () => {});\n}\n',
      'no-misused-promises',
    ],
    ['numbers sorted as strings', 'export const s = [10, 9, 1].sort();\n', 'require-array-sort-compare'],
    ['an object stringified', 'export const t = (o: { a: number }) => `${String(o)}`;\n', 'no-base-to-string'],
    ['an unused import', "import { join } from 'node:path';\nexport const x = 1;\n", 'no-unused-vars'],
  ])('catches %s', (_what, source, rule) => {
    expect(lint(source)).toContain(rule);
  });

  it('passes clean code', () => {
    expect(lint('export async function f(): Promise<number> {\n  return [10, 9, 1].sort((a, b) => a - b)[0];\n}\n')).toBe('');
  });
});
