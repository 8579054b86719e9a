/**
 * Interim writer of the run directory (verdict.json + ledger.ndjson.gz) and the end-of-run summary,
 * until the renderers of reports/ take over (JUnit, summary.md, report.html).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, symlink, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { RunRecord } from '../reports/run-record.ts';

export async function writeRunOutput(out: string, record: RunRecord, ledger: Iterable<string>): Promise<string> {
  const stamp = record.startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const dir = join(out, `${record.command}-${stamp}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'verdict.json'), JSON.stringify(record, null, 2) + '\n');
  if (record.files.ledger) {
    const lines = (function* () { for (const l of ledger) yield l + '\n'; })();
    await pipeline(Readable.from(lines), createGzip(), createWriteStream(join(dir, record.files.ledger)));
  }
  const tmp = join(out, `.latest-${process.pid}`);
  await rm(tmp, { force: true });
  await symlink(`${record.command}-${stamp}`, tmp);
  await rename(tmp, join(out, 'latest'));
  return dir;
}

export function printSummary(record: RunRecord, dir: string): void {
  const lines = [`\n${record.headline}`];
  for (const c of record.checks) {
    lines.push(`  ${c.verdict.padEnd(12)} ${c.name}${c.error ? `: ${c.error}` : ''}`);
    for (const g of c.gates) lines.push(`    ${g.verdict.padEnd(12)} ${g.name}: ${g.evidence}`);
    for (const f of c.failures) lines.push(`    failures: ${f.count} × ${f.cause} (e.g. ${f.examples[0]?.reason ?? ''})`);
  }
  if (record.error) lines.push(`  run error: ${record.error}`);
  lines.push(`report: ${join(dir, 'verdict.json')}`, '');
  process.stdout.write(lines.join('\n'));
}
