import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { KUBELET_STATUS_SYNC_PERIOD_MS } from '../../../lib/kube/backoff.ts';
import { isNotFound, k8s, mergePatch, messageOf } from '../../../lib/kube/client.ts';
import type { ImageStore } from '../image-store.ts';
import { containerEnv, expandRefs, type ConfigSource } from './container-env.ts';
import { ContainerRun, type BackoffPolicy } from './container-run.ts';
import type { EventRecorder } from './events.ts';
import { KUBELET_USER_AGENT, type ProbeTarget } from './probe.ts';

/** What the agent needs of the pod network (implemented by network/pod-network.ts). */
export interface PodSandboxNetwork {
  attach(podKey: string): Promise<{ netns: string; ip: string }>;
  detach(podKey: string): Promise<void>;
  commandInNamespace(netns: string, argv: string[], opts?: { uid?: number; gid?: number }): string[];
}

export interface PodWorkerDeps {
  core: k8s.CoreV1Api;
  network: PodSandboxNetwork;
  images: ImageStore;
  config: ConfigSource;
  events: EventRecorder;
  hostIP: string;
  logRoot: string;
  backoff: BackoffPolicy;
  log: Logger;
  /** Timeline hook: every lifecycle step of every pod, for failure attribution later. */
  onLifecycle?: (e: { at: number; pod: string; uid: string; step: string; detail?: string }) => void;
}

type Condition = k8s.V1PodCondition;

/**
 * One pod on one node, as the kubelet runs it: sandbox (network namespace), containers as OS
 * processes, status, and the termination sequence deletionTimestamp → preStop → SIGTERM →
 * SIGKILL at the grace deadline → terminal phase → final delete with grace 0.
 */
export class PodWorker {
  pod: k8s.V1Pod;
  private readonly deps: PodWorkerDeps;
  private readonly containers: ContainerRun[] = [];
  private readonly images = new Map<string, { ref: string; id: string }>();
  private podIP: string | undefined;
  private netns: string | undefined;
  private startTime = new Date();
  private conditions = new Map<string, Condition>();
  private phase: string = 'Pending';
  private terminating: Promise<void> | undefined;
  private gone = false;
  private syncing = false;
  private syncAgain = false;
  /**
   * Wakes a status sync waiting after a failure: a new change is sent at once, what failed again on
   * the status manager's tick (KUBELET_STATUS_SYNC_PERIOD_MS).
   */
  private wakeSync: (() => void) | undefined;
  private syncFailing = false;

  constructor(pod: k8s.V1Pod, deps: PodWorkerDeps) {
    this.pod = pod;
    this.deps = deps;
  }

  get key(): string {
    return this.pod.metadata!.uid!;
  }
  get name(): string {
    return `${this.pod.metadata!.namespace}/${this.pod.metadata!.name}`;
  }
  get ip(): string | undefined {
    return this.podIP;
  }

  private mark(step: string, detail?: string): void {
    this.deps.onLifecycle?.({ at: Date.now(), pod: this.name, uid: this.key, step, detail });
  }

  async start(): Promise<void> {
    const spec = this.pod.spec!;
    this.setCondition('PodScheduled', true);
    this.setCondition('Initialized', true);
    this.setCondition('PodReadyToStartContainers', false);
    this.setCondition('ContainersReady', false, 'ContainersNotReady');
    this.setCondition('Ready', false, 'ContainersNotReady');
    if (spec.initContainers?.length) {
      this.deps.events.pod(
        this.pod,
        'Warning',
        'Unsupported',
        'init containers are not supported by the embedded node agent; starting the app containers only',
      );
    }
    try {
      const { netns, ip } = await this.deps.network.attach(this.key);
      this.netns = netns;
      this.podIP = ip;
      this.mark('sandbox', ip);
    } catch (err) {
      this.deps.events.pod(
        this.pod,
        'Warning',
        'FailedCreatePodSandBox',
        `Failed to create pod sandbox: ${(err as Error).message}`,
      );
      this.deps.log.error({ pod: this.name, err: (err as Error).message }, 'sandbox failed');
      this.sync();
      return;
    }
    if (this.terminating || this.gone) {
      // Deleted while its sandbox was being made: the termination already ran, so undo the sandbox here.
      await this.deps.network.detach(this.key).catch(() => {});
      return;
    }
    this.setCondition('PodReadyToStartContainers', true);
    this.phase = 'Running';
    this.startTime = new Date();
    const ports = new Map<string, number>();
    for (const c of spec.containers) for (const p of c.ports ?? []) if (p.name) ports.set(p.name, p.containerPort);
    const podSc = spec.securityContext ?? {};
    for (const c of spec.containers) {
      const uid = c.securityContext?.runAsUser ?? podSc.runAsUser;
      const gid = c.securityContext?.runAsGroup ?? podSc.runAsGroup ?? (uid !== undefined ? uid : undefined);
      const target: ProbeTarget = {
        ip: this.podIP!,
        ports,
        wrap: (argv) => this.deps.network.commandInNamespace(this.netns!, argv, { uid, gid }),
      };
      const run = new ContainerRun(
        c,
        spec.restartPolicy ?? 'Always',
        target,
        join(this.deps.logRoot, `${this.pod.metadata!.namespace}_${this.pod.metadata!.name}_${this.key}`, c.name),
        {
          changed: () => {
            this.checkCompleted();
            this.sync();
          },
          event: (type, reason, message) => {
            this.deps.events.pod(this.pod, type, reason, message, c.name);
            this.mark(reason, `${c.name}: ${message}`);
          },
          graceSeconds: () => spec.terminationGracePeriodSeconds ?? 30,
          launch: async () => {
            const image = await this.deps.images.resolve(c.image!);
            this.images.set(c.name, { ref: c.image!, id: image.id });
            const env = await containerEnv(this.pod, c, image.config.env ?? {}, this.deps.config);
            const cmd = c.command?.length ? c.command : image.config.cmd;
            const argv = [...cmd, ...(c.command?.length ? (c.args ?? []) : c.args?.length ? c.args : [])].map((a) =>
              expandRefs(a, env),
            );
            if (argv[0] === 'node') argv[0] = await this.deps.images.runtimeNode();
            const cwd = c.workingDir ? join(image.dir, c.workingDir) : image.dir;
            return {
              argv: this.deps.network.commandInNamespace(this.netns!, argv, { uid, gid }),
              // The kubelet's HOSTNAME: spec.hostname when set (an Indexed Job's pods get <job>-<index>), else the pod's name.
              env: {
                PATH: '/usr/local/bin:/usr/bin:/bin',
                HOSTNAME: this.pod.spec?.hostname || this.pod.metadata!.name!,
                ...env,
              },
              cwd,
            };
          },
        },
        this.deps.backoff,
      );
      this.containers.push(run);
    }
    this.sync();
    for (const c of this.containers) await c.start();
  }

  /**
   * A pod whose containers have all exited for good (restartPolicy Never, or OnFailure with exit 0)
   * is finished, as the kubelet reports it: phase Succeeded when every container exited 0, else
   * Failed; not Ready; its sandbox torn down. The object stays until someone deletes it (a Job's
   * controller counts it first).
   */
  private checkCompleted(): void {
    if (
      this.phase !== 'Running' ||
      this.terminating ||
      this.containers.length === 0 ||
      !this.containers.every((c) => c.completed)
    )
      return;
    const codes = this.containers.map((c) => (c.state.kind === 'terminated' ? c.state.exitCode : 1));
    this.phase = codes.every((x) => x === 0) ? 'Succeeded' : 'Failed';
    this.setCondition('Ready', false, 'PodCompleted');
    this.setCondition('ContainersReady', false, 'PodCompleted');
    this.mark('completed', `${this.phase} (exit ${codes.join(',')})`);
    void this.teardownSandbox();
  }

  /** Handles the pod object's latest version from the watch. */
  update(pod: k8s.V1Pod): void {
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp && !this.terminating) {
      void this.terminate(pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30);
    }
  }

  /**
   * The kubelet's termination sequence. The grace countdown starts before preStop; a preStop still
   * running at the deadline gets one extra 2 s; then SIGTERM, then SIGKILL at the (extended) deadline.
   */
  terminate(graceSeconds: number): Promise<void> {
    this.terminating ??= (async () => {
      const start = Date.now();
      let deadline = start + graceSeconds * 1000;
      this.mark('terminating', `grace ${graceSeconds}s`);
      for (const c of this.containers) {
        c.stopRestarts();
        c.stopNonReadinessProbes();
      }
      await Promise.all(
        this.containers.map(async (c) => {
          if (!c.running) return;
          const preStop = c.spec.lifecycle?.preStop;
          if (preStop && graceSeconds > 0) {
            this.deps.events.pod(this.pod, 'Normal', 'Killing', `Stopping container ${c.spec.name}`, c.spec.name);
            this.mark('preStop', c.spec.name);
            const finished = await this.runPreStop(c, preStop, deadline - Date.now());
            if (!finished && Date.now() >= deadline) deadline = Date.now() + 2000; // the kubelet's minimum 2 s after a slow preStop
            this.mark('preStopDone', `${c.spec.name}${finished ? '' : ' (cut at grace deadline)'}`);
          } else {
            this.deps.events.pod(this.pod, 'Normal', 'Killing', `Stopping container ${c.spec.name}`, c.spec.name);
          }
          this.mark('SIGTERM', c.spec.name);
          const before = Date.now();
          await c.kill(Math.max(0, deadline - Date.now()));
          const waited = Date.now() - before;
          this.mark(
            c.state.kind === 'terminated' && c.state.signal === 'SIGKILL' ? 'SIGKILL' : 'exited',
            `${c.spec.name} after ${waited} ms`,
          );
        }),
      );
      for (const c of this.containers) await c.waitExit();
      const codes = this.containers.map((c) => (c.state.kind === 'terminated' ? c.state.exitCode : 0));
      this.phase = codes.every((x) => x === 0) ? 'Succeeded' : 'Failed';
      this.setCondition('Ready', false, 'PodCompleted');
      this.setCondition('ContainersReady', false, 'PodCompleted');
      await this.syncNow();
      await this.teardownSandbox();
      if (!this.gone) {
        try {
          await this.deps.core.deleteNamespacedPod({
            name: this.pod.metadata!.name!,
            namespace: this.pod.metadata!.namespace!,
            body: { gracePeriodSeconds: 0, preconditions: { uid: this.key } },
          });
        } catch (err) {
          if (!isNotFound(err)) this.deps.log.warn({ pod: this.name, err: messageOf(err) }, 'final delete failed');
        }
      }
      this.mark('deleted');
    })();
    return this.terminating;
  }

  /** The object vanished without a graceful termination (force delete): kill at once and clean up. */
  async forceStop(): Promise<void> {
    this.gone = true;
    this.wakeSync?.();
    for (const c of this.containers) c.stopRestarts();
    await Promise.all(this.containers.map((c) => c.kill(0, 'SIGKILL')));
    await this.teardownSandbox();
    this.mark('force-stopped');
  }

  /** Agent shutdown (`cluster down`): a short SIGTERM, then SIGKILL; no API calls. */
  async shutdown(graceMs: number): Promise<void> {
    this.gone = true;
    this.wakeSync?.();
    for (const c of this.containers) c.stopRestarts();
    await Promise.all(this.containers.map((c) => c.kill(graceMs)));
    await this.teardownSandbox();
  }

  private sandboxDown = false;
  private async teardownSandbox(): Promise<void> {
    if (this.sandboxDown) return;
    this.sandboxDown = true;
    if (this.netns)
      await this.deps.network
        .detach(this.key)
        .catch((err) => this.deps.log.warn({ pod: this.name, err: String(err) }, 'detach failed'));
  }

  private async runPreStop(c: ContainerRun, h: k8s.V1LifecycleHandler, budgetMs: number): Promise<boolean> {
    const budget = Math.max(0, budgetMs);
    const within = async (p: Promise<unknown>) => {
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        p.then(
          () => true,
          () => true,
        ),
        new Promise<boolean>((res) => {
          timer = setTimeout(() => res(false), budget);
        }),
      ]);
      clearTimeout(timer);
      return r;
    };
    if (h.sleep) return await within(sleep(h.sleep.seconds * 1000));
    if (h.exec?.command) {
      const { spawn } = await import('node:child_process');
      const argv = this.deps.network.commandInNamespace(this.netns!, h.exec.command, {});
      const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
      const done = new Promise((res) => child.once('exit', res).once('error', res));
      const ok = await within(done);
      if (!ok) child.kill('SIGKILL');
      return ok;
    }
    if (h.httpGet) {
      const port =
        typeof h.httpGet.port === 'number'
          ? h.httpGet.port
          : Number((c.spec.ports ?? []).find((p) => p.name === h.httpGet!.port)?.containerPort ?? h.httpGet.port);
      return await within(
        new Promise<void>((res) => {
          const req = request(
            {
              host: h.httpGet!.host ?? this.podIP,
              port,
              path: h.httpGet!.path ?? '/',
              headers: { 'User-Agent': KUBELET_USER_AGENT },
              agent: false,
            },
            (r) => {
              r.resume();
              r.on('end', () => res());
            },
          );
          req.on('error', () => res());
          req.end();
        }),
      );
    }
    return true;
  }

  private setCondition(type: string, status: boolean, reason?: string): void {
    const prev = this.conditions.get(type);
    const s = status ? 'True' : 'False';
    // lastTransitionTime changes only when the status flips: Deployments time minReadySeconds from it.
    if (prev && prev.status === s) {
      prev.reason = status ? undefined : reason;
      return;
    }
    this.conditions.set(type, {
      type,
      status: s,
      lastTransitionTime: new Date(),
      lastProbeTime: null as unknown as undefined,
      reason: status ? undefined : reason,
    });
  }

  private buildStatus(): k8s.V1PodStatus {
    const allReady = this.containers.length > 0 && this.containers.every((c) => c.isReady());
    if (this.phase === 'Running') {
      this.setCondition('ContainersReady', allReady, 'ContainersNotReady');
      this.setCondition('Ready', allReady, 'ContainersNotReady');
    }
    return {
      phase: this.phase,
      hostIP: this.deps.hostIP,
      hostIPs: [{ ip: this.deps.hostIP }],
      podIP: this.podIP,
      podIPs: this.podIP ? [{ ip: this.podIP }] : undefined,
      startTime: this.startTime,
      conditions: [...this.conditions.values()],
      containerStatuses: this.pod.spec!.containers.map((spec) => {
        const run = this.containers.find((c) => c.spec.name === spec.name);
        const img = this.images.get(spec.name) ?? { ref: spec.image!, id: '' };
        return run
          ? run.status(img.ref, img.id)
          : {
              name: spec.name,
              image: spec.image!,
              imageID: '',
              ready: false,
              restartCount: 0,
              state: { waiting: { reason: 'ContainerCreating' } },
            };
      }),
    };
  }

  /** Coalescing status sync: at most one PATCH in flight; changes meanwhile are sent right after. */
  sync(): void {
    if (this.syncing) {
      this.syncAgain = true;
      this.wakeSync?.();
      return;
    }
    void this.syncNow();
  }

  private async syncNow(): Promise<void> {
    while (this.syncing) await sleep(5);
    this.syncing = true;
    try {
      do {
        this.syncAgain = false;
        if (this.gone) break;
        const status = this.buildStatus();
        const wasReady = this.conditions.get('Ready')?.status;
        try {
          await this.deps.core.patchNamespacedPodStatus(
            { name: this.pod.metadata!.name!, namespace: this.pod.metadata!.namespace!, body: { status } },
            mergePatch,
          );
          this.mark('status', `${status.phase} ready=${wasReady}`);
          if (this.syncFailing) this.deps.log.warn({ pod: this.name }, 'status update sent again');
          this.syncFailing = false;
        } catch (err) {
          if (isNotFound(err)) {
            this.gone = true;
            break;
          }
          if (!this.syncFailing)
            this.deps.log.warn(
              { pod: this.name, err: messageOf(err) },
              'status update failed; sending it with the next change or sync tick',
            );
          this.syncFailing = true;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, KUBELET_STATUS_SYNC_PERIOD_MS);
            this.wakeSync = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.wakeSync = undefined;
          this.syncAgain = true;
        }
      } while (this.syncAgain);
    } finally {
      this.syncing = false;
    }
  }
}
