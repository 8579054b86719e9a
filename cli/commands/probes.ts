import { Command, InvalidArgumentError, Option } from 'commander';
import { licenseApi } from '../../apps/license-api/profile.ts';
import { TARGET_STRATEGIES } from '../../cluster/strategies.ts';
import { openTarget, parseTargetSpec, type Target, type TargetSpec } from '../../cluster/target.ts';
import type { AppProfile } from '../../experiments/app-profile.ts';
import { loadManifests, readDeployment, type ManifestSource } from '../../probes/manifest-source.ts';
import { runProbes } from '../../probes/probes.ts';
import type { TargetRecord } from '../../reports/run-record.ts';
import { parseBaseUrl } from '../../lib/checks/http.ts';
import { suiteRunRecord, urlTarget } from '../../suites/record.ts';
import { UsageError } from '../exit-codes.ts';
import { openShell } from '../shell.ts';

interface ProbesFlags {
  url?: string;
  manifests?: string;
  deployment?: string;
  context?: string;
  kubeconfig?: string;
  failOn: 'error' | 'warning';
  samples: number;
  out: string;
  json: boolean;
}

export interface ProbesCommandOptions {
  url: string;
  manifests?: string;
  deployment?: string;
  context?: string;
  kubeconfig?: string;
  failOn: 'error' | 'warning';
  samples: number;
  out: string;
  json: boolean;
}

/** The base URL and, with --deployment, the context's target spec; each mistake a UsageError. */
function probesUsage(o: ProbesCommandOptions): { url: string; spec: TargetSpec | null } {
  let url: string;
  try {
    url = parseBaseUrl(o.url).toString().replace(/\/$/, '');
  } catch (err) {
    throw new UsageError(`--url: ${(err as Error).message}`);
  }
  if (o.manifests && o.deployment)
    throw new UsageError('give either --manifests <path> or --deployment <namespace/name> --context <context>, not both');
  if (o.deployment && !/^[a-z0-9-]{1,63}\/[a-z0-9.-]{1,253}$/.test(o.deployment))
    throw new UsageError('--deployment must be <namespace>/<name>, e.g. --deployment coditect/license-api');
  if (o.deployment && !o.context)
    throw new UsageError(
      '--deployment needs --context <kubeconfig context> (the cluster to read it from; nothing there is changed)',
    );
  if (o.context && !o.deployment) throw new UsageError('--context goes with --deployment <namespace>/<name>');
  let spec: TargetSpec | null = null;
  try {
    spec = o.context ? parseTargetSpec(`context:${o.context}`) : null;
  } catch (err) {
    throw new UsageError(`--context: ${(err as Error).message}`);
  }
  return { url, spec };
}

export async function runProbesCommand(o: ProbesCommandOptions, app: AppProfile = licenseApi): Promise<number> {
  const { url, spec } = probesUsage(o);
  using shell = openShell({ stopping: 'stopping; cleaning up what the run created first' });
  const { say, started } = shell;
  let manifests: ManifestSource | undefined;
  let target: Target | undefined;
  let targetRecord: TargetRecord = urlTarget(url);
  let error: string | null = null;
  let checks: Awaited<ReturnType<typeof runProbes>>['checks'] = [];
  try {
    if (o.manifests) {
      try {
        manifests = await loadManifests(o.manifests);
      } catch (err) {
        throw new UsageError(`--manifests: ${(err as Error).message}`);
      }
    } else if (o.deployment && spec) {
      const [namespace, name] = o.deployment.split('/');
      // Someone else's cluster, used read-only: start times from the pods' conditions, nothing deleted or stopped.
      target = await openTarget(spec, TARGET_STRATEGIES, { kubeconfig: o.kubeconfig, serviceUrl: url });
      targetRecord = {
        kind: 'existing',
        name: target.name,
        context: target.context,
        serverVersion: await target.serverVersion(),
        url,
        endpointLagMs: null,
      };
      manifests = await readDeployment(target.kubeConfig, namespace, name);
      app = { ...app, workload: { ...app.workload, namespace, deployment: name } };
    }
    say(`probes ${url}${manifests ? ` with ${manifests.source}` : ''}`);
    const r = await runProbes({
      app,
      url,
      manifests,
      target,
      measure: target ? 'read-only' : 'none',
      failOn: o.failOn,
      samples: o.samples,
      signal: shell.signal,
      say,
    });
    checks = r.checks;
    error = r.error;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    error = shell.signal.aborted ? (shell.signal.reason as Error).message : (err as Error).message;
  } finally {
    await target?.close().catch(() => {});
  }
  const record = suiteRunRecord({
    command: 'probes',
    target: targetRecord,
    checks,
    startedAt: started,
    endedAt: Date.now(),
    error,
    app: { name: app.name, versions: {}, faults: [] },
  });
  return await shell.finish(record, { out: o.out, json: o.json });
}

/** `verdict probes --url URL [--manifests path | --deployment ns/name --context C]`. */
export function probesCommand(app: AppProfile = licenseApi): Command {
  return new Command('probes')
    .description(
      'check the health endpoints of a live service and the zero-downtime settings of its manifests (measured where possible)',
    )
    .option('--url <url>', 'base URL of the service (required)')
    .option('--manifests <path>', 'a kustomize directory or a YAML file whose Deployment to judge')
    .option('--deployment <namespace/name>', 'judge the Deployment as it runs in a cluster (with --context; read-only)')
    .option('--context <context>', 'the kubeconfig context of --deployment')
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .addOption(new Option('--fail-on <severity>', 'findings that fail the run').choices(['error', 'warning']).default('error'))
    .option(
      '--samples <n>',
      'requests per health endpoint',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 50) throw new InvalidArgumentError('must be a whole number from 1 to 50');
        return n;
      },
      5,
    )
    .option('--out <dir>', 'where the run directory goes', '.reports/probes')
    .option('--json', 'print verdict.json to stdout instead of the summary', false)
    .addHelpText(
      'after',
      `
Against the live service (GETs only, a handful): each of /health/startup, /health/live and
/health/ready answers the status and body its probe needs, every answer within half of the probe's
timeoutSeconds (from the manifests, else Kubernetes' default 1 s).

With --manifests or --deployment, the zero-downtime rules of the Deployment, each finding with its
field, what is there or was measured, the rule, the fix and a severity: startup budget
(periodSeconds × failureThreshold) above the start time; preStop (plus the app's own shutdown delay)
above the endpoint-propagation delay; terminationGracePeriodSeconds ≥ preStop + the app's drain +
its longest request; replicas ≥ 2, maxUnavailable 0, a PodDisruptionBudget that keeps capacity;
liveness not the same check as readiness and not on the dependencies; resources and securityContext.
--deployment reads the start time from the pods' conditions (measured); values it cannot measure
(endpoint propagation) are assumed, said so with the source, and at most a warning. The embedded
cluster measures both and takes each dependency away to check liveness (see the cluster test).

Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR (unreachable, interrupted), 64 bad usage.

Examples:
  npx verdict probes --url http://127.0.0.1:30080 --manifests license-api/kubernetes/overlays/embedded
  npx verdict probes --url https://api.example.com --deployment coditect/license-api --context prod --fail-on warning`,
    )
    .action(async (f: ProbesFlags) => {
      if (!f.url) throw new UsageError('--url is required: the base URL of the service, e.g. --url http://127.0.0.1:30080');
      process.exitCode = await runProbesCommand(
        {
          url: f.url,
          manifests: f.manifests,
          deployment: f.deployment,
          context: f.context,
          kubeconfig: f.kubeconfig,
          failOn: f.failOn,
          samples: f.samples,
          out: f.out,
          json: f.json,
        },
        app,
      );
    });
}
