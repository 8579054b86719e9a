import { basename } from 'node:path';
import { Command } from 'commander';
import { ConfigFileError, loadHarnessConfig } from '../../experiments/config.ts';
import { PlanInputError, readPlan, TofuError, type ReadPlan } from '../../lib/iac/plan.ts';
import { classifyPlan, effectiveRules } from '../../lib/policy/plan-risk.ts';
import { judgePlan } from '../../reports/plan-risk.ts';
import type { RunRecord } from '../../reports/run-record.ts';
import { suiteRunRecord } from '../../suites/record.ts';
import { finishRun } from '../shell.ts';
import { UsageError } from '../exit-codes.ts';

export interface PlanRiskCommandOptions {
  plan: string;
  tofu?: string;
  chdir?: string;
  approvedBy?: string;
  config?: string;
  environment?: string;
  out: string;
  json: boolean;
  stdin?: () => Promise<string>;
}

/** Reads and judges the plan, writes the run directory, prints; resolves with the exit code. */
export async function runPlanRiskCommand(o: PlanRiskCommandOptions): Promise<number> {
  const started = Date.now();
  const approvedBy = o.approvedBy?.trim();
  if (o.approvedBy !== undefined && (!approvedBy || approvedBy.length > 200 || /[\u0000-\u001f\u007f]/.test(approvedBy)))
    throw new UsageError(
      '--approved-by needs who approved, e.g. --approved-by "jane (change CHG-1234)" (1-200 printable characters)',
    );
  if (o.environment !== undefined && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(o.environment))
    throw new UsageError('--environment is a name such as production or staging (lower-case letters, digits, dashes)');
  if (o.plan === '-' && !o.stdin && process.stdin.isTTY)
    throw new UsageError(
      'plan-risk reads the plan JSON from stdin with "-": pipe it in, e.g. tofu show -json tfplan | verdict plan-risk -',
    );
  let config;
  try {
    config = (await loadHarnessConfig(o.config)).config;
  } catch (err) {
    if (err instanceof ConfigFileError) throw new UsageError(err.message);
    throw err;
  }
  let read: ReadPlan | null = null;
  let error: string | null = null;
  try {
    read = await readPlan(o.plan, { tofu: o.tofu, chdir: o.chdir, stdin: o.stdin });
  } catch (err) {
    if (err instanceof PlanInputError) throw new UsageError(err.message);
    if (err instanceof TofuError) error = err.message;
    else throw err;
  }
  const at = Date.now();
  const name = o.environment ?? (o.plan === '-' ? 'stdin' : basename(o.plan));
  const target: RunRecord['target'] = {
    kind: 'plan',
    name,
    context: o.environment ?? null,
    serverVersion: null,
    url: null,
    endpointLagMs: null,
  };
  const app: RunRecord['app'] = {
    name: 'OpenTofu',
    versions: read?.plan.terraform_version ? { tofu: read.plan.terraform_version } : {},
    faults: [],
  };
  if (!read) {
    const record = suiteRunRecord({ command: 'plan-risk', target, app, checks: [], startedAt: started, endedAt: at, error });
    return await finishRun(record, { out: o.out, json: o.json, secrets: [], started });
  }
  const rules = effectiveRules(config.planRisk);
  const classification = classifyPlan(read.plan, rules);
  const judged = judgePlan(classification, {
    approvedBy: approvedBy ?? null,
    failOn: config.planRisk.failOn,
    errored: read.plan.errored === true,
    source: read.source,
    provenance: `plan format ${read.plan.format_version}, read ${read.via === 'json' ? 'as JSON' : `with ${read.via}`}`,
    at,
  });
  const record = suiteRunRecord({
    command: 'plan-risk',
    target,
    app,
    checks: judged.checks,
    startedAt: started,
    endedAt: Date.now(),
  });
  record.headline = judged.headline;
  const needing = judged.checks.some((c) => c.gates.some((g) => g.observed.approved_by));
  if (approvedBy && needing)
    record.approvals = [
      {
        what: 'plan-risk',
        by: approvedBy,
        reason: null,
        at: new Date(at).toISOString(),
        detail: `${classification.byRisk.high} high-risk and ${classification.byRisk.medium} medium-risk changes in ${read.source}`,
      },
    ];
  return await finishRun(record, { out: o.out, json: o.json, secrets: [], started });
}

/** `verdict plan-risk <plan>`: the risk of an OpenTofu plan's changes, as a verdict. */
export function planRiskCommand(): Command {
  return new Command('plan-risk')
    .description(
      "judge an OpenTofu plan: the seed's high-risk changes (Cloud SQL, GKE versions, network, key and secret deletion or rotation) need an approval",
    )
    .argument('<plan>', 'the JSON of `tofu show -json tfplan` (a file, or - for stdin), or the binary plan itself')
    .option('--approved-by <who>', 'who approved the high-risk changes: turns their FAIL into PASS, recorded in verdict.json')
    .option('--tofu <path>', "tofu binary for a binary plan (default: $VERDICT_TOFU, scripts/tofu.sh's cache, PATH)")
    .option('--chdir <dir>', "the plan's initialised configuration directory, for a binary plan (default: the plan's directory)")
    .option('--environment <name>', 'name of the environment the plan is for (shown as the target)')
    .option(
      '--config <file>',
      'rules added to or overriding the default table: planRisk in verdict.config.yaml (default: ./verdict.config.yaml if present)',
    )
    .option('--out <dir>', 'where the run directory goes', '.reports/plan-risk')
    .option('--json', 'print verdict.json to stdout instead of the summary', false)
    .addHelpText(
      'after',
      `
Every resource change gets a risk from the rules (lib/policy/plan-risk.ts; extend or override them in
verdict.config.yaml under planRisk): high for Cloud SQL instance replace/destroy or restart-causing
updates (tier, version, flags), GKE cluster/node-pool versions, VPC/subnet/firewall/router/NAT/private
service connection changes, KMS key or Secret Manager secret deletion or rotation, service-account key
deletion; medium for any other stateful resource destroyed or replaced; low for the rest.

PASS: nothing high-risk (or it was approved with --approved-by). FAIL: high-risk changes without
approval. ERROR: the plan itself errored, or tofu could not read a binary plan. An empty plan PASSes.
A plan that is not JSON, not a plan, or of an unknown format major version is bad usage (exit 64).

Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR, 64 bad usage.

Examples:
  tofu plan -out=tfplan && tofu show -json tfplan > plan.json && npx verdict plan-risk plan.json
  npx verdict plan-risk opentofu/environments/production/tfplan --approved-by "jane (CHG-1234)"`,
    )
    .action(async (plan: string, f: Omit<PlanRiskCommandOptions, 'plan'>) => {
      process.exitCode = await runPlanRiskCommand({ ...f, plan });
    });
}
