#!/usr/bin/env node
// Counts what vitest's JSON reports say, honestly, and prints the last line CI reads:
//   N passed, N failed, N skipped
// A failure is: a failed test; a test file that failed outside any test (import error, hook failure);
// a report that is missing (its run did not happen or crashed); a report whose `success` is false
// with no failure to show for it; and, in CI, a skipped test that `.ci/allowed-skips` does not name
// (a skipped suite must never pass for a green one). Each failure is named, with the first line of its
// message, just above the count, where CI's tail shows it. Exit status: 0 when nothing failed, else 1.
//
// Usage: node .ci/count-tests.mjs [--allowed-skips FILE] [--also-failed N] REPORT.json...
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

const args = process.argv.slice(2);
let allowFile = new URL('./allowed-skips', import.meta.url).pathname;
const i = args.indexOf('--allowed-skips');
if (i >= 0) allowFile = args.splice(i, 2)[1];
// Failures CI found outside vitest (the fresh-machine check), each counted as one failed test.
const j = args.indexOf('--also-failed');
const alsoFailed = j >= 0 ? Number(args.splice(j, 2)[1]) || 0 : 0;
const inCI = process.env.CI === 'true' || process.env.CI === '1';

/** `.ci/allowed-skips`: one skip a line, `<file> | <regex on the test's full name> | <reason>`; # comments. */
function readAllowList(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l, n) => {
      const [path, pattern, reason] = l.split('|').map((x) => x?.trim());
      if (!path || !pattern || !reason) throw new Error(`${file}:${n + 1}: want "<file> | <regex> | <reason>", got: ${l}`);
      return { path, re: new RegExp(pattern), reason };
    });
}

const allowed = readAllowList(allowFile);
let passed = 0;
let failed = alsoFailed;
let skipped = 0;
let total = 0;
const problems = [];
for (const file of args) {
  if (!existsSync(file)) {
    problems.push(`no test report at ${file} (its run did not happen or crashed)`);
    failed++;
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  let failedHere = 0;
  for (const t of r.testResults) {
    const path = relative(process.cwd(), t.name);
    const assertions = t.assertionResults ?? [];
    if (t.status === 'failed' && !assertions.some((a) => a.status === 'failed')) {
      problems.push(`${path}: the file failed outside any test: ${(t.message ?? '').split('\n')[0]}`);
      failedHere++;
    }
    for (const a of assertions) {
      total++;
      if (a.status === 'passed') passed++;
      else if (a.status === 'failed') {
        failedHere++;
        // Named here, next to the count, because CI shows the tail of the log: a failure far above it is lost.
        const why = String(a.failureMessages?.[0] ?? '')
          .split('\n')[0]
          .slice(0, 400);
        problems.push(`${path}: FAILED: ${a.fullName}${why ? ` — ${why}` : ''}`);
      } else {
        skipped++;
        const allow = allowed.find((x) => x.path === path && x.re.test(a.fullName));
        if (allow) continue;
        if (inCI) {
          problems.push(`${path}: skipped, and not on .ci/allowed-skips: ${a.fullName}`);
          failedHere++;
        } else problems.push(`(not CI) ${path}: skipped: ${a.fullName}`);
      }
    }
  }
  if (r.success === false && failedHere === 0) {
    problems.push(`${file}: vitest reported success: false without a failed test`);
    failedHere++;
  }
  failed += failedHere;
}
if (total === 0 && failed === 0) {
  problems.push('the test runner executed no test');
  failed++;
}
for (const p of problems) console.error(`ci: ${p}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
