/**
 * Observe mode: someone else's operation (a `gcloud container clusters upgrade`, a `tofu apply`, a
 * `kubectl apply` of a network policy) as an experiment's act, under the app's load and the watched
 * timeline (DESIGN: "the runner with a foreign action"). The load starts, warms up; the command
 * runs, its output streamed and its tail kept; the load stays on until the command has exited and
 * the workload has settled (every replica Ready on the Deployment's current template) and for the
 * settle time after; then the usual gates judge it, each failed request with its cause. The
 * command's exit code and output are in the report. `allowFailedRate` is a declared disruption
 * budget (default 0: nothing may fail).
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitForSettled } from '../lib/kube/disrupt.ts';
import type { Gate } from '../reports/gates.ts';
import { blindWatches } from './control-plane-outage.ts';
import { deployOrUseRunning, faultsOf, loadGates, pause, workloadShape, type WorkloadShape } from './common.ts';
import type { Experiment, RunContext } from './experiment.ts';

/** Output kept for the report: the last lines, at most this many and this many bytes. */
export const OUTPUT_KEPT_LINES = 60;
export const OUTPUT_KEPT_BYTES = 8192;
/** How long the workload may take to settle after the command, before the gate says it did not. */
const SETTLE_WITHIN_MS = 300_000;

export interface ObserveOptions {
  /** The command and its arguments (run without a shell, as given). */
  argv: string[];
  /** Failed requests allowed, as a fraction (a declared disruption budget); 0: none. */
  allowFailedRate: number;
  /** The command is stopped (SIGTERM, then SIGKILL after 10 s) after this long. */
  timeoutMs: number;
  /** Each line the command prints (already without its newline), as it prints it. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface ObserveData {
  argv: string[];
  shape: WorkloadShape;
  /** Epoch ms the command started and ended. */
  startedAt: number;
  endedAt: number;
  exitCode: number | null;
  signal: string | null;
  /** Why it did not run or was stopped (spawn error, timeout, interrupted), else null. */
  trouble: string | null;
  /** The last lines it printed (bounded), and how many lines it printed in all. */
  output: string[];
  lines: number;
  /** When the workload had settled after it (null: `notSettled` says why). */
  settledAt: number | null;
  notSettled: string | null;
}

/** Keeps the last lines of a stream within OUTPUT_KEPT_LINES and OUTPUT_KEPT_BYTES. */
class Tail {
  readonly lines: string[] = [];
  count = 0;
  #bytes = 0;
  push(line: string): void {
    const l = line.length > 1000 ? `${line.slice(0, 1000)}…` : line;
    this.lines.push(l);
    this.count++;
    this.#bytes += l.length + 1;
    while (this.lines.length > OUTPUT_KEPT_LINES || this.#bytes > OUTPUT_KEPT_BYTES)
      this.#bytes -= this.lines.shift()!.length + 1;
  }
}

/** Runs the command to its end (or its timeout, or the run's interrupt), streaming and keeping its output. */
async function runCommand(ctx: RunContext, o: ObserveOptions, tail: Tail) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The command acts on the cluster under test: kubectl and friends find it as the harness does.
  if (ctx.target.kubeconfigPath) env.KUBECONFIG = ctx.target.kubeconfigPath;
  if (ctx.target.context) env.VERDICT_TARGET_CONTEXT = ctx.target.context;
  const child = spawn(o.argv[0], o.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let trouble: string | null = null;
  const stop = (why: string) => {
    trouble ??= why;
    child.kill('SIGTERM');
    setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), 10_000).unref();
  };
  for (const stream of ['stdout', 'stderr'] as const) {
    let partial = '';
    child[stream].setEncoding('utf8');
    child[stream].on('data', (d: string) => {
      const parts = (partial + d).split(/\r?\n/);
      partial = parts.pop()!;
      for (const line of parts) {
        tail.push(line);
        o.onLine?.(line, stream);
      }
    });
    child[stream].on('end', () => {
      if (partial) {
        tail.push(partial);
        o.onLine?.(partial, stream);
      }
    });
  }
  const timer = setTimeout(() => stop(`stopped after its ${o.timeoutMs / 1000} s timeout`), o.timeoutMs);
  const onAbort = () => stop('interrupted');
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const ended = await new Promise<{ exitCode: number | null; signal: string | null }>((resolve) => {
    child.once('error', (err) => {
      trouble ??= `could not run ${o.argv[0]}: ${err.message}`;
      resolve({ exitCode: null, signal: null });
    });
    child.once('close', (code, signal) => resolve({ exitCode: code, signal }));
  });
  clearTimeout(timer);
  ctx.signal.removeEventListener('abort', onAbort);
  return { ...ended, trouble: trouble as string | null };
}

/** Waits until the workload has settled (its current template, every replica Ready); API errors meanwhile are waited out. */
async function settled(ctx: RunContext, replicas: number): Promise<{ at: number | null; why: string | null }> {
  const { namespace, selector, deployment } = ctx.app.workload;
  const deadline = Date.now() + SETTLE_WITHIN_MS;
  let last = '';
  for (;;) {
    try {
      await waitForSettled(ctx.target.kubeConfig, namespace, selector, deployment, replicas, {
        signal: ctx.signal,
        timeoutMs: Math.max(1000, deadline - Date.now()),
      });
      return { at: Date.now(), why: null };
    } catch (err) {
      ctx.signal.throwIfAborted();
      last = (err as Error).message;
    }
    if (Date.now() > deadline) return { at: null, why: last };
    await sleep(1000, undefined, { signal: ctx.signal });
  }
}

function commandGate(d: ObserveData): Gate {
  const how = d.exitCode !== null ? `exit ${d.exitCode}` : d.signal ? `killed by ${d.signal}` : 'did not run';
  const ok = d.exitCode === 0 && !d.trouble;
  const shown = d.output.slice(-20).join('\n');
  return {
    name: 'the operation succeeded',
    verdict: ok ? 'PASS' : 'FAIL',
    observed: { exit_code: d.exitCode, duration_ms: d.endedAt - d.startedAt, output_lines: d.lines },
    evidence:
      `${JSON.stringify(d.argv.join(' '))}: ${how} after ${((d.endedAt - d.startedAt) / 1000).toFixed(1)} s${d.trouble ? ` (${d.trouble})` : ''}` +
      (ok ? '' : ': the operation itself failed, so the rehearsal did not rehearse it') +
      `; ${d.lines} lines of output${shown ? `, the last:\n${shown}` : ''}`,
  };
}

function settledGate(d: ObserveData): Gate {
  return d.settledAt !== null
    ? {
        name: 'workload settled',
        verdict: 'PASS',
        observed: { after_ms: d.settledAt - d.endedAt },
        evidence: `every replica Ready on the current template ${((d.settledAt - d.endedAt) / 1000).toFixed(1)} s after the command ended`,
      }
    : {
        name: 'workload settled',
        verdict: 'FAIL',
        evidence: `not settled ${SETTLE_WITHIN_MS / 1000} s after the command: ${d.notSettled}`,
      };
}

/** The PDB's floor during the operation, where the release declares one. */
function capacityGates(e: Parameters<Experiment<ObserveData>['judge']>[0]): Gate[] {
  const d = e.data;
  const min = d.shape.pdbMinAvailable;
  if (min === null || min < 1) return [];
  const cap = e.timeline.capacityBetween(d.startedAt, d.settledAt ?? e.endedAt);
  if (!cap)
    return [
      { name: 'disruption budget held', verdict: 'INCONCLUSIVE', evidence: 'the pods were not watched during the operation' },
    ];
  return [
    {
      name: 'disruption budget held',
      verdict: cap.minReady >= min ? 'PASS' : 'FAIL',
      observed: { minReady: cap.minReady, minAvailable: min },
      evidence: `ready pods never below ${cap.minReady} during the operation (PodDisruptionBudget minAvailable ${min})`,
    },
  ];
}

/** The timeline's watches, where the operation took the API away: each must have come back. */
function watchGates(e: Parameters<Experiment<ObserveData>['judge']>[0]): Gate[] {
  const gaps = e.timeline.gapsBetween(e.data.startedAt, e.endedAt);
  const blind = blindWatches(e.timeline);
  if (blind.length)
    return [
      { name: 'the harness saw through it', verdict: 'FAIL', evidence: `watches that never came back: ${blind.join(', ')}` },
    ];
  if (!gaps.length) return [];
  const unseen = [...new Set(gaps.flatMap((g) => g.unseen))];
  return [
    {
      name: 'the harness saw through it',
      verdict: 'PASS',
      observed: { gaps: gaps.length, unseen_changes: unseen.length },
      evidence: `the timeline's watches lost the API ${gaps.length} times (longest ${(Math.max(...gaps.map((g) => g.to - g.from)) / 1000).toFixed(1)} s) and re-listed; ${unseen.length} changes were found only then: ${unseen.slice(0, 12).join(', ') || 'none'}`,
    },
  ];
}

/** The experiment whose act is someone else's command. */
export function observeExperiment(o: ObserveOptions): Experiment<ObserveData> {
  if (!o.argv.length) throw new Error('observe mode needs a command to run');
  return {
    name: 'observe',
    description: `an external operation under load, judged by the same gates: ${o.argv.join(' ').slice(0, 200)}`,
    setup: deployOrUseRunning,
    async act(ctx) {
      const shape = await workloadShape(ctx.app.release(ctx.options.to, ctx.target.platform, faultsOf(ctx.options.faults)));
      const { warmupMs, settleMs } = ctx.config.experiments;
      const load = await ctx.load('observe', {
        rate: ctx.options.rate,
        maxMs: warmupMs + o.timeoutMs + SETTLE_WITHIN_MS + settleMs + 60_000,
      });
      await pause(ctx, warmupMs);
      const tail = new Tail();
      const startedAt = Date.now();
      ctx.timeline.action('command', 'start', o.argv.join(' ').slice(0, 300), startedAt);
      const r = await runCommand(ctx, o, tail);
      const endedAt = Date.now();
      ctx.timeline.action(
        'command',
        'exit',
        r.exitCode !== null ? `exit ${r.exitCode}` : (r.trouble ?? `signal ${r.signal}`),
        endedAt,
      );
      ctx.signal.throwIfAborted();
      const s = await settled(ctx, shape.replicas);
      await pause(ctx, settleMs);
      await load.stop();
      for (let i = 0; i < 20 && blindWatches(ctx.timeline).length; i++) await pause(ctx, 500);
      return {
        argv: o.argv,
        shape,
        startedAt,
        endedAt,
        ...r,
        output: tail.lines,
        lines: tail.count,
        settledAt: s.at,
        notSettled: s.why,
      };
    },
    figures: (e) => ({ operation_s: (e.data.endedAt - e.data.startedAt) / 1000 }),
    judge(e, { config }) {
      const budget = o.allowFailedRate;
      const gates = loadGates(e.loads[0], config, { maxErrorRate: budget });
      if (budget > 0) {
        const g = gates.find((x) => x.name === 'no failed request');
        if (g) g.name = `failed requests within the budget (${(budget * 100).toFixed(3).replace(/\.?0+$/, '')} %)`;
      }
      return [commandGate(e.data), ...gates, settledGate(e.data), ...capacityGates(e), ...watchGates(e)];
    },
  };
}
