import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { licenseApi } from '../../apps/license-api/profile.ts';
import { Command } from 'commander';
import type { LoadRun } from '../../lib/load/index.ts';
import type { LoadFlags } from '../../lib/load/run-options.ts';
import { ExitCode, exitCodeOf, UsageError } from '../exit-codes.ts';

interface LoadCommandFlags extends LoadFlags {
  out?: string;
  ndjson?: boolean;
  bundle?: string;
  progressEvery?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** `verdict load`: bounded HTTP load against one URL, with a per-request ledger and a verdict. */
export function loadCommand(): Command {
  return new Command('load')
    .description('send bounded HTTP load to a URL (open or closed model) and judge it against thresholds')
    .option('--url <url>', 'target URL (loopback by default; its path is requested when no scenario is given)')
    .option('--rate <rate>', 'open model: constant arrival rate, e.g. 500/s, 30000/m')
    .option('--vus <n>', 'closed model: constant virtual users')
    .option('--duration <duration>', 'how long to schedule load, e.g. 30s, 2m')
    .option('--max-vus <n>', 'open model: iterations in flight before new ones are dropped')
    .option('--connections <n>', 'keep-alive connections (default 32, or one per VU)')
    .option('--timeout <duration>', 'per-request timeout (default 10s)')
    .option('--max-requests <n>', 'hard cap on requests (default 5,000,000)')
    .option('--min-requests <n>', 'fewer finished requests make the run INCONCLUSIVE (default 100)')
    .option('--max-schedule-delay <duration>', 'engine lateness (p99) that makes the run INCONCLUSIVE (default 50ms)')
    .option('--threshold <expr>', 'k6-style threshold, repeatable: "http_req_duration: p(99)<250"', collect, [])
    .option('--config <file>', 'k6-shaped options file (.json/.yaml): scenarios, thresholds, verdict{url,...}')
    .option('--scenario <file.ts>', 'scenario module (default export: defineScenario({...}))')
    .option('--out <dir>', 'write load-summary.json (and requests.ndjson with --ndjson) here')
    .option('--ndjson', 'stream the per-request ledger to <out>/requests.ndjson')
    .option('--allow-remote', 'allow a target outside loopback (rate capped at 10/s, arrival-rate only)')
    .option('--remote-rate-cap <n>', 'lower the remote rate cap')
    .option('--insecure', 'do not verify TLS certificates')
    .option('--precision <mode>', 'scheduling: "timer" (default) or "spin" (sub-ms, costs a core)')
    .option('--progress-every <duration>', 'progress line interval when stderr is not a TTY (default 5s)')
    .option('--bundle <file>', 'instead of running: write a single-file load agent (engine + scenario) for plain node')
    .option('--backend-header <name>', 'response header naming the pod that answered (recorded per request)', licenseApi.identityHeaders.backend)
    .option('--version-header <name>', 'response header naming the app version (recorded per request)', licenseApi.identityHeaders.version)
    .addHelpText('after', `
Examples:
  verdict load --url http://127.0.0.1:8080/health/ready --rate 500/s --duration 30s
  verdict load --url http://127.0.0.1:8080 --scenario apps/license-api/load-scenario.ts --rate 200/s --duration 1m \\
    --threshold "http_req_failed: rate<0.001" --threshold "http_req_duration: p(99)<250" --out .reports/load
  verdict load --config k6-options.json --out .reports/load
  verdict load --scenario apps/license-api/load-scenario.ts --bundle dist/load-agent.mjs

Exit codes: 0 PASS, 1 FAIL (threshold breached), 2 INCONCLUSIVE (too little data, load below target,
aborted), 3 ERROR, 64 bad usage (including a target the guard refuses).`)
    .action(async (flags: LoadCommandFlags) => {
      // The engine (undici, esbuild, zod, ...) loads only when this command runs, not for `verdict --help`.
      const { startLoad, TargetNotAllowedError, ThresholdSyntaxError } = await import('../../lib/load/index.ts');
      const { progressLine, summaryTable } = await import('../../lib/load/report-text.ts');
      const { loadOptionsFromFlags, LoadUsageError } = await import('../../lib/load/run-options.ts');
      const { parseDuration } = await import('../../lib/load/units.ts');
      if (flags.bundle) {
        const { bundleLoadAgent } = await import('../../lib/load/bundle.ts');
        const out = await bundleLoadAgent({ scenario: flags.scenario, outfile: flags.bundle });
        process.stderr.write(`load agent written to ${out.outfile} (${(out.bytes / 1024).toFixed(0)} KiB); run: node ${out.outfile} --url URL --rate 100/s --duration 30s\n`);
        return;
      }
      let resolved;
      try {
        resolved = await loadOptionsFromFlags(flags);
      } catch (err) {
        if (err instanceof LoadUsageError) throw new UsageError(err.message);
        throw err;
      }
      const { options, defaultThresholds } = resolved;
      if (flags.ndjson && !flags.out) throw new UsageError('--ndjson writes into --out: give --out <dir> as well');
      if (flags.out) {
        await mkdir(flags.out, { recursive: true });
        if (flags.ndjson) options.ndjson = join(flags.out, 'requests.ndjson');
      }
      const tty = Boolean(process.stderr.isTTY);
      let plainEvery = 5000;
      if (flags.progressEvery) {
        try { plainEvery = parseDuration(flags.progressEvery); } catch (err) { throw new UsageError(`--progress-every: ${(err as Error).message}`); }
      }
      let lastPlain = 0;
      let run: LoadRun;
      options.progressIntervalMs = tty ? 250 : Math.min(1000, plainEvery);
      options.onProgress = (p) => {
        if (p.phase === 'done') {
          if (tty) process.stderr.write('\r\x1b[K');
          return;
        }
        const line = progressLine(p, run?.plan.durationMs ?? 0);
        if (tty) process.stderr.write(`\r\x1b[K${line}`);
        else if (p.elapsedMs - lastPlain >= plainEvery - 1) {
          lastPlain = p.elapsedMs;
          process.stderr.write(`load: ${line}\n`);
        }
      };
      try {
        run = await startLoad(options);
      } catch (err) {
        if (err instanceof TargetNotAllowedError || err instanceof ThresholdSyntaxError || err instanceof RangeError) {
          throw new UsageError((err as Error).message);
        }
        throw err;
      }
      if (defaultThresholds) process.stderr.write('load: no thresholds given; judging with the default http_req_failed: rate<0.01\n');
      let interrupts = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        if (++interrupts > 1) process.exit(130);
        process.stderr.write(`\nload: ${sig}: stopping (in-flight requests are recorded as aborted; again to quit at once)\n`);
        run.abort(`interrupted by ${sig}`);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let result;
      try {
        result = await run.result;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      process.stdout.write(summaryTable(result) + '\n');
      if (flags.out) {
        const file = join(flags.out, 'load-summary.json');
        await writeFile(file, JSON.stringify({ summary: result.summary, thresholds: result.thresholds, assessment: result.assessment }, null, 2) + '\n');
        process.stderr.write(`load: results in ${file}${flags.ndjson ? ` and ${options.ndjson}` : ''}\n`);
      }
      process.exitCode = exitCodeOf(result.assessment.verdict);
    });
}
