/**
 * Benchmark of the reports (not a test): a synthetic 10-minute run at 500 req/s (300,000 ledger
 * rows, about 0.3 % failed in five incidents) written as a run directory, then re-rendered from it
 * as `verdict report` does. Prints the time of each step and the size of each file.
 *
 *   node bench/report.ts [--rate 500] [--duration 600] [--rounds 3] [--keep]
 *
 * Times are the median of --rounds. The ledger lines come from the synthetic model, lazily; the
 * time to generate them alone is measured too and shown apart (a real run has them in memory).
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRunDirectory, renderRunDirectory, writeRun } from '../reports/run-directory.ts';
import { longRun } from '../reports/testing/synthetic.ts';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '500' },
    duration: { type: 'string', default: '600' },
    rounds: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
  },
});
const rate = Number(values.rate),
  durationS = Number(values.duration),
  rounds = Number(values.rounds);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${x.toFixed(0).padStart(6)} ms`;
const size = (b: number) =>
  (b >= 1024 * 1024 ? `${(b / 1024 / 1024).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`).padStart(10);

const out = await mkdtemp(join(tmpdir(), 'verdict-bench-report-'));
try {
  let t = performance.now();
  const run = longRun({ rate, durationS });
  const modelMs = performance.now() - t;
  const c = run.record.checks[0];
  console.log(
    `synthetic run: ${rate} req/s for ${durationS} s = ${c.requests!.total.toLocaleString('en-US')} requests, ${c.requests!.failed.toLocaleString('en-US')} failed ` +
      `(${c.failures.map((f) => `${f.cause} ${f.count}`).join(', ')}), ${c.series.length} seconds of series, ${c.timeline.length} timeline events; record built by the model in ${modelMs.toFixed(0)} ms`,
  );

  const gen: number[] = [],
    write: number[] = [],
    rerender: number[] = [];
  let lastDir = '';
  for (let i = 0; i < rounds; i++) {
    t = performance.now();
    let bytes = 0;
    for (const l of run.ledgerLines!()) bytes += l.length;
    gen.push(performance.now() - t);
    const d = await createRunDirectory(out, 'experiment', new Date(Date.UTC(2026, 2, 3, 14, 0, i)));
    t = performance.now();
    await writeRun(d.dir, run.record, run.ledgerLines!(), { env: {} });
    write.push(performance.now() - t);
    t = performance.now();
    await renderRunDirectory(d.dir);
    rerender.push(performance.now() - t);
    lastDir = d.dir;
    if (i === 0) console.log(`ledger: ${(bytes / 1024 / 1024).toFixed(1)} MiB of NDJSON before compression`);
  }
  console.log('');
  console.log(`median of ${rounds} rounds, on this machine (${(await import('node:os')).cpus().length} cores, shared):`);
  console.log(`  generate the ledger lines (model only)        ${ms(median(gen))}`);
  console.log(
    `  writeRun: every file (lines generated inside) ${ms(median(write))}   ≈ ${ms(median(write) - median(gen))} without the model`,
  );
  console.log(`  verdict report: re-render all from the files  ${ms(median(rerender))}`);
  console.log('');
  console.log('files:');
  for (const f of (await readdir(lastDir)).sort()) console.log(`  ${f.padEnd(18)}${size((await stat(join(lastDir, f))).size)}`);
  console.log(`  peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  if (values.keep) console.log(`\nkept: ${lastDir}`);
} finally {
  if (!values.keep) await rm(out, { recursive: true, force: true });
}
