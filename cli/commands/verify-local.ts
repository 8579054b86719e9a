import { Command, InvalidArgumentError, Option } from 'commander';
import { rolloutUnderLoad } from '../../chaos/rollout-under-load.ts';
import { upEmbedded } from '../../cluster/embedded/embedded-cluster.ts';
import { buildReport, renderMarkdown, writeReport } from '../../reports/verify-report.ts';
import { licenseApiRelease, licenseApiToken } from '../../suites/license-api-release.ts';
import { ExitCode, UsageError } from '../exit-codes.ts';

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Deliberately broken builds, to show that the verdict catches what it claims to catch. */
/** `release` says which side carries the fault: the pods that shut down (from) or the new ones (to). */
const FAULTS: Record<string, { env: Record<string, string>; release: 'from' | 'to'; what: string }> = {
  'naive-shutdown': { env: { SHUTDOWN_MODE: 'naive', SHUTDOWN_DELAY_MS: '0' }, release: 'from', what: 'the old pods close every connection at once on SIGTERM (a weak signal: only requests in flight at that instant fail)' },
  'errors-after-start': { env: { FAULT_ERRORS_AFTER_START_MS: '60000' }, release: 'to', what: 'the new pods answer 500 for their first 60 s while their readiness says ready' },
};

interface Opts { from: string; to: string; rate: number; out: string; nodes: number; break?: string; stateDir?: string }

/** `verdict verify-local`: the main job. Local cluster → release A → load → rollout to B → gates → verdict. */
export function verifyLocalCommand(): Command {
  return new Command('verify-local')
    .description('bring up a local cluster, roll the license API out under load and decide PASS/FAIL')
    .option('--from <tag>', 'release running before the rollout', 'v1')
    .option('--to <tag>', 'release rolled out under load', 'v2')
    .option('--rate <flows>', 'license flows per second (acquire + heartbeat + release each)', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0 || n > 500) throw new InvalidArgumentError('must be a number of flows per second from 1 to 500');
      return n;
    }, 20)
    .option('--nodes <n>', 'cluster nodes (the Deployment has 3 replicas and a PDB of 2)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 10) throw new InvalidArgumentError('must be a whole number from 1 to 10');
      return n;
    }, 3)
    .option('--out <dir>', 'where report.json and report.md go', '.reports/verify-local')
    .option('--state-dir <dir>', 'the embedded cluster\'s state directory (default /var/lib/verdict/verify-local)')
    .addOption(new Option('--break <fault>', 'deploy a deliberately broken build, to see the verdict catch it').choices(Object.keys(FAULTS)))
    .addHelpText('after', `
What it does, on the embedded cluster (no Docker needed; run as root):
  1. starts the cluster (real control plane, process node agent, pod network, NodePort proxy)
  2. builds license-api:<from> and license-api:<to>, deploys <from> (3 replicas)
  3. sends open-model load (the license flow) through http://127.0.0.1:30080
  4. rolls out <to> with the real Deployment controller while the load runs
  5. judges: rollout completed, no failed request, load as planned, traffic crossed the
     rollout, capacity held; writes report.json and report.md; tears everything down

Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR.
Example: sudo make verify-local     (or: npx verdict verify-local --break naive-shutdown)`)
    .action(async (o: Opts) => {
      if (!TAG.test(o.from) || !TAG.test(o.to) || o.from === o.to) throw new UsageError('--from and --to must be two different image tags, e.g. --from v1 --to v2');
      if (process.getuid?.() !== 0) throw new UsageError('verify-local runs the embedded cluster, which needs root (network namespaces): run it as root, e.g. sudo make verify-local');
      const started = Date.now();
      const say = (m: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${m}\n`);
      const fault = o.break ? FAULTS[o.break] : undefined;
      if (fault) say(`deliberately broken build: ${o.break} (${fault.what}); the verdict should be FAIL`);
      const abort = new AbortController();
      const onSignal = () => { say('interrupted: tearing down'); abort.abort(new Error('interrupted')); };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let cluster: Awaited<ReturnType<typeof upEmbedded>> | undefined;
      try {
        cluster = await upEmbedded({ name: 'verify-local', stateDir: o.stateDir, nodes: o.nodes, onProgress: say, signal: abort.signal });
        say(`building license-api:${o.from} and license-api:${o.to}`);
        await cluster.loadLicenseApiImage(o.from);
        await cluster.loadLicenseApiImage(o.to);
        const token = await licenseApiToken('embedded', 'verify-local');
        const release = (tag: string, side: 'from' | 'to') => licenseApiRelease(tag, { env: fault?.release === side ? fault.env : undefined });
        let last = 0;
        const result = await rolloutUnderLoad({
          kubeConfig: cluster.kubeConfig, namespace: 'coditect', selector: 'app=license-api',
          from: release(o.from, 'from'), to: release(o.to, 'to'), url: cluster.serviceUrl(30080), token, licenseKey: 'TEST-KEY', rate: o.rate,
          onProgress: say, signal: abort.signal,
          attribute: (port) => cluster!.proxy.lookup(port)?.backend?.podName,
          onLoadProgress: (p) => {
            if (Date.now() - last < 5000) return;
            last = Date.now();
            say(`load: ${p.succeeded} ok, ${p.failed} failed, ${p.dropped} dropped, ${p.recentRate.toFixed(0)} req/s, p99 ${p.recentP99?.toFixed(1) ?? '-'} ms`);
          },
        });
        const report = buildReport(result, { from: o.from, to: o.to, replicas: 3, maxSurge: 1, minRequests: 300 });
        const files = await writeReport(o.out, report);
        process.stdout.write('\n' + renderMarkdown(report) + `\nreport: ${files.json}, ${files.markdown}\n`);
        process.exitCode = ExitCode[report.verdict];
      } catch (err) {
        process.stderr.write(`verify-local: ERROR: ${(err as Error).message}\n`);
        process.exitCode = ExitCode.ERROR;
      } finally {
        if (cluster) { say('tearing the cluster down'); await cluster.down(); }
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
