import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { k8s } from '../../../lib/kube/client.ts';
import { ProbeWorker, type ProbeKind, type ProbeTarget } from './probe.ts';

/** How to start one instance of a container: argv (already wrapped into the pod's namespace), env, cwd. */
export interface LaunchSpec {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
}

export type ContainerState =
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'running'; startedAt: Date; pid: number }
  | { kind: 'terminated'; exitCode: number; signal?: string; reason: string; startedAt: Date; finishedAt: Date };

export interface ContainerRunHooks {
  /** Something in the status changed (state, readiness, started, restarts): sync the pod status. */
  changed(): void;
  event(type: 'Normal' | 'Warning', reason: string, message: string): void;
  /** Builds the launch spec for the next start (env may depend on the pod's current status). */
  launch(): Promise<LaunchSpec>;
  /** Grace period for a restart-kill (liveness/startup failure): the pod's terminationGracePeriodSeconds. */
  graceSeconds(): number;
}

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  resetAfterMs: number;
}
export const KUBELET_BACKOFF: BackoffPolicy = { baseMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 };

/**
 * One container of a pod across its restarts: spawns the process, runs its probes, restarts it
 * under the pod's restartPolicy with the kubelet's exponential back-off, and stops it with the
 * termination sequence (preStop is run by the pod worker, then `stop`).
 */
export class ContainerRun {
  readonly spec: k8s.V1Container;
  state: ContainerState = { kind: 'waiting', reason: 'ContainerCreating' };
  lastState: ContainerState | undefined;
  restartCount = 0;
  ready = false;
  started = false;
  /** Exited and will not be started again (restartPolicy Never, or OnFailure after exit 0). */
  completed = false;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private probes: ProbeWorker[] = [];
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private readonly restartPolicy: string;
  private readonly hooks: ContainerRunHooks;
  private readonly target: ProbeTarget;
  private readonly logDir: string;
  private readonly backoff: BackoffPolicy;
  private log: WriteStream | undefined;

  constructor(
    spec: k8s.V1Container,
    restartPolicy: string,
    target: ProbeTarget,
    logDir: string,
    hooks: ContainerRunHooks,
    backoff: BackoffPolicy,
  ) {
    this.spec = spec;
    this.restartPolicy = restartPolicy;
    this.target = target;
    this.logDir = logDir;
    this.hooks = hooks;
    this.backoff = backoff;
  }

  get pid(): number | undefined {
    return this.state.kind === 'running' ? this.state.pid : undefined;
  }
  get running(): boolean {
    return this.state.kind === 'running';
  }

  async start(): Promise<void> {
    if (this.stopping) return;
    let launch: LaunchSpec;
    try {
      launch = await this.hooks.launch();
    } catch (err) {
      this.state = { kind: 'waiting', reason: 'CreateContainerConfigError', message: (err as Error).message };
      this.hooks.event('Warning', 'Failed', `Error: ${(err as Error).message}`);
      this.hooks.changed();
      this.scheduleRestart(true);
      return;
    }
    mkdirSync(this.logDir, { recursive: true });
    this.log = createWriteStream(join(this.logDir, `${this.restartCount}.log`), { flags: 'a' });
    const child = spawn(launch.argv[0], launch.argv.slice(1), {
      env: launch.env,
      cwd: launch.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const log = this.log;
    // A log file that cannot be written must not take the node agent down.
    log.on('error', () => {});
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    // The end of the log waits for the end of the output: 'exit' can come before the last bytes of
    // stdout/stderr are read (a process that prints as it exits, e.g. a Job's), 'close' after them.
    child.once('close', () => log.end());
    child.once('error', () => log.end());
    const startedAt = new Date();
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.onExit(startedAt, 128, undefined, `StartError: ${err.message}`);
        resolve();
      });
      child.once('exit', (code, signal) => {
        this.onExit(startedAt, code ?? (signal ? 128 + signalNumber(signal) : 1), signal ?? undefined);
        resolve();
      });
    });
    if (child.pid === undefined) return;
    this.state = { kind: 'running', startedAt, pid: child.pid };
    this.started = !this.spec.startupProbe;
    this.ready = false;
    this.hooks.event('Normal', 'Started', `Started container ${this.spec.name}`);
    this.hooks.changed();
    this.startProbes();
  }

  private startProbes(): void {
    const onChange = (kind: ProbeKind, ok: boolean, message: string) => {
      if (kind === 'startup') {
        if (ok) {
          this.started = true;
          this.hooks.changed();
          // As the kubelet's status update does: a started container's readiness is probed at once.
          this.probes.find((p) => p.kind === 'readiness')?.trigger();
        } else this.failedProbe('startup', message);
      } else if (kind === 'liveness') {
        if (!ok) this.failedProbe('liveness', message);
      } else {
        if (!ok) this.hooks.event('Warning', 'Unhealthy', `Readiness probe failed: ${message}`);
        this.ready = ok;
        this.hooks.changed();
      }
    };
    const gate = () => this.started;
    if (this.spec.startupProbe) this.probes.push(new ProbeWorker('startup', this.spec.startupProbe, this.target, onChange));
    if (this.spec.livenessProbe)
      this.probes.push(new ProbeWorker('liveness', this.spec.livenessProbe, this.target, onChange, gate));
    if (this.spec.readinessProbe)
      this.probes.push(new ProbeWorker('readiness', this.spec.readinessProbe, this.target, onChange, gate));
    else this.ready = true; // no readiness probe: ready once running (and started)
    for (const p of this.probes) p.start();
    if (!this.spec.readinessProbe) this.hooks.changed();
  }

  /** Whether the container counts as ready: running, started, and its readiness probe passing. */
  isReady(): boolean {
    return this.running && this.started && this.ready;
  }

  private failedProbe(kind: 'liveness' | 'startup', message: string): void {
    if (this.stopping || !this.running) return;
    this.hooks.event('Warning', 'Unhealthy', `${kind === 'liveness' ? 'Liveness' : 'Startup'} probe failed: ${message}`);
    this.hooks.event('Normal', 'Killing', `Container ${this.spec.name} failed ${kind} probe, will be restarted`);
    this.stopProbes();
    void this.kill(this.hooks.graceSeconds() * 1000);
  }

  private stopProbes(): void {
    for (const p of this.probes) p.stop();
    this.probes = [];
  }

  private onExit(startedAt: Date, exitCode: number, signal: string | undefined, reasonOverride?: string): void {
    this.stopProbes();
    this.child = undefined;
    const finishedAt = new Date();
    const reason = reasonOverride ?? (exitCode === 0 ? 'Completed' : signal === 'SIGKILL' ? 'Error' : 'Error');
    this.state = { kind: 'terminated', exitCode, signal, reason, startedAt, finishedAt };
    this.ready = false;
    this.started = false;
    const restart = this.restartPolicy === 'Always' || (this.restartPolicy === 'OnFailure' && exitCode !== 0);
    if (!this.stopping && !restart) this.completed = true;
    this.hooks.changed();
    if (this.stopping) return;
    const ranMs = finishedAt.getTime() - startedAt.getTime();
    if (ranMs >= this.backoff.resetAfterMs) this.backoffMs = 0;
    if (restart) this.scheduleRestart(false);
  }

  private scheduleRestart(configError: boolean): void {
    if (this.stopping) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs === 0 ? this.backoff.baseMs : this.backoffMs * 2, this.backoff.maxMs);
    if (delay > 0 && !configError) {
      this.lastState = this.state;
      this.state = {
        kind: 'waiting',
        reason: 'CrashLoopBackOff',
        message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${this.spec.name}`,
      };
      this.hooks.event('Warning', 'BackOff', 'Back-off restarting failed container');
      this.hooks.changed();
    }
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      if (this.state.kind === 'terminated') this.lastState = this.state;
      if (!configError) this.restartCount++;
      void this.start();
    }, delay);
  }

  /** SIGTERM now (or `signal`), SIGKILL once `graceMs` has passed; resolves when the process is gone. */
  async kill(graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(
      () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      },
      Math.max(0, graceMs),
    );
    await this.exited;
    clearTimeout(timer);
  }

  /** From now on the container is never restarted (pod termination). */
  stopRestarts(): void {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    if (this.state.kind === 'waiting') this.hooks.changed();
  }

  /** Stops probes too, except readiness, which the kubelet keeps running while a pod terminates. */
  stopNonReadinessProbes(): void {
    this.probes = this.probes.filter((p) => {
      if (p.kind !== 'readiness') {
        p.stop();
        return false;
      }
      return true;
    });
  }

  async waitExit(): Promise<void> {
    await this.exited;
  }

  /** The container's entry in pod.status.containerStatuses. */
  status(imageRef: string, imageId: string): k8s.V1ContainerStatus {
    return {
      name: this.spec.name,
      image: imageRef,
      imageID: imageId,
      containerID: this.pid
        ? `verdict-process://${this.pid}`
        : this.state.kind === 'terminated'
          ? 'verdict-process://exited'
          : undefined,
      ready: this.isReady(),
      started: this.running && this.started,
      restartCount: this.restartCount,
      state: toApiState(this.state),
      lastState: this.lastState ? toApiState(this.lastState) : {},
    };
  }
}

function toApiState(s: ContainerState): k8s.V1ContainerState {
  switch (s.kind) {
    case 'waiting':
      return { waiting: { reason: s.reason, message: s.message } };
    case 'running':
      return { running: { startedAt: s.startedAt } };
    case 'terminated':
      return {
        terminated: {
          exitCode: s.exitCode,
          reason: s.reason,
          startedAt: s.startedAt,
          finishedAt: s.finishedAt,
          signal: s.signal ? signalNumber(s.signal) : undefined,
        },
      };
  }
}

function signalNumber(signal: string): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGABRT: 6, SIGSEGV: 11 };
  return table[signal] ?? 0;
}
