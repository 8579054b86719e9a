import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// The linter as configured (.oxlintrc.json, type-aware through tsgolint) must catch the bugs it is
// there for: a broken config or a rule switched off would let them through silently.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
// Outside the repository: oxlint skips what a repository's .gitignore names.
const dir = mkdtempSync(join(tmpdir(), 'verdict-lint-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: object };

/**
 * The findings on `source` as the file `file`, in a directory of its own beside a copy of the
 * config (its overrides' patterns are relative to it) and of tsconfig.json (types from this checkout).
 */
function lint(source: string, file = 'probe.ts'): string {
  const here = mkdtempSync(join(dir, 'case-'));
  mkdirSync(dirname(join(here, file)), { recursive: true });
  writeFileSync(join(here, file), source);
  copyFileSync(join(ROOT, '.oxlintrc.json'), join(here, '.oxlintrc.json'));
  const compilerOptions = { ...tsconfig.compilerOptions, typeRoots: [join(ROOT, 'node_modules/@types')] };
  writeFileSync(join(here, 'tsconfig.json'), JSON.stringify({ ...tsconfig, compilerOptions }));
  try {
    // From the checkout, where oxlint finds tsgolint.
    execFileSync(
      join(ROOT, 'node_modules/.bin/oxlint'),
      ['--type-aware', '-c', join(here, '.oxlintrc.json'), '-f', 'unix', here],
      {
        cwd: ROOT,
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
    ['an explicit any', 'export const n = (x: any): number => x.length;\n', 'no-explicit-any'],
    [
      'parsed JSON returned as a typed value',
      'export function f(s: string): { a: number } {\n  return JSON.parse(s);\n}\n',
      'no-unsafe-return',
    ],
    ['parsed JSON passed on unchecked', 'export const f = (s: string) => Math.abs(JSON.parse(s));\n', 'no-unsafe-argument'],
  ])('catches %s', (_what, source, rule) => {
    expect(lint(source)).toContain(rule);
  });

  // Tests, their helpers and plain JavaScript (no types to check against) may use any.
  const UNSAFE_ANY = 'export const f = (s: string, x: any): { a: number } => (x ? JSON.parse(s) : Math.abs(JSON.parse(s)));\n';
  it.each(['probe.test.ts', 'testing/probe.ts', 'test/probe.ts'])('lets any through in %s', (file) => {
    expect(lint(UNSAFE_ANY)).toMatch(/no-explicit-any[\s\S]*no-unsafe-(return|argument)/);
    expect(lint(UNSAFE_ANY, file)).toBe('');
  });
  it('lets any through in .js and .mjs', () => {
    const js = 'export function f(s) {\n  return Math.abs(JSON.parse(s));\n}\n';
    expect(lint(js, 'probe.mjs')).toBe('');
    expect(lint(js, 'probe.js')).toBe('');
  });

  it('passes clean code', () => {
    expect(lint('export async function f(): Promise<number> {\n  return [10, 9, 1].sort((a, b) => a - b)[0];\n}\n')).toBe('');
  });
});
