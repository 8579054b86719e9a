import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { k8s } from '../../../lib/kube/client.ts';

export type ProbeKind = 'startup' | 'liveness' | 'readiness';
export interface ProbeOutcome {
  ok: boolean;
  message: string;
}

/** Where a probe goes: the pod's address, its named ports, and how to run a command inside it. */
export interface ProbeTarget {
  ip: string;
  ports: Map<string, number>;
  /** argv to spawn so that the command runs in the pod's network namespace as its user. */
  wrap(argv: string[]): string[];
}

export const KUBELET_USER_AGENT = 'kube-probe/1.37';

function resolvePort(port: number | string | undefined, target: ProbeTarget): number {
  if (typeof port === 'number') return port;
  if (port && /^\d+$/.test(port)) return Number(port);
  const p = port ? target.ports.get(port) : undefined;
  if (p === undefined) throw new Error(`port "${port}" is not a named container port`);
  return p;
}

/** Runs one probe attempt with the kubelet's semantics (HTTP 200–399, TCP connect, exec exit 0). */
export async function runProbe(probe: k8s.V1Probe, target: ProbeTarget): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.httpGet) return await httpProbe(probe.httpGet, target, timeoutMs);
    if (probe.tcpSocket)
      return await tcpProbe(
        probe.tcpSocket.host ?? target.ip,
        resolvePort(probe.tcpSocket.port as number | string, target),
        timeoutMs,
      );
    if (probe.exec?.command) return await execProbe(target.wrap(probe.exec.command), timeoutMs);
    return { ok: false, message: 'unsupported probe handler (the embedded node agent runs httpGet, tcpSocket and exec)' };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

function httpProbe(h: k8s.V1HTTPGetAction, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  const port = resolvePort(h.port as number | string, target);
  const host = h.host ?? target.ip;
  if ((h.scheme ?? 'HTTP') !== 'HTTP')
    return Promise.resolve({ ok: false, message: 'HTTPS probes are not supported by the embedded node agent' });
  const headers: Record<string, string> = { 'User-Agent': KUBELET_USER_AGENT, Accept: '*/*', Connection: 'close' };
  for (const hh of h.httpHeaders ?? []) headers[hh.name] = hh.value;
  return new Promise((resolve) => {
    const req = request({ host, port, path: h.path ?? '/', method: 'GET', headers, agent: false, timeout: timeoutMs }, (res) => {
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > 10_240) res.destroy();
      });
      res.on('end', () => done(res.statusCode ?? 0));
      res.on('close', () => done(res.statusCode ?? 0));
    });
    let settled = false;
    const done = (status: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(
        status >= 200 && status < 400
          ? { ok: true, message: `HTTP ${status}` }
          : { ok: false, message: `HTTP probe failed with statuscode: ${status}` },
      );
    };
    const fail = (message: string) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve({ ok: false, message });
      }
    };
    const timer = setTimeout(
      () => fail(`Get "http://${host}:${port}${h.path ?? '/'}": context deadline exceeded (timeout ${timeoutMs} ms)`),
      timeoutMs,
    );
    req.on('error', (err) => fail(`Get "http://${host}:${port}${h.path ?? '/'}": ${err.message}`));
    req.end();
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` });
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ok: true, message: 'connected' });
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ok: false, message: `dial tcp ${host}:${port}: ${err.message}` });
    });
  });
}

function execProbe(argv: string[], timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      if (out.length < 1024) out += d;
    });
    child.stderr.on('data', (d) => {
      if (out.length < 1024) out += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, message: err.message });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve({ ok: false, message: `command timed out after ${timeoutMs} ms` });
      else
        resolve(code === 0 ? { ok: true, message: out.trim() } : { ok: false, message: `command exited ${code}: ${out.trim()}` });
    });
  });
}

/**
 * One probe of one container, on the kubelet's schedule: the first attempt after
 * initialDelaySeconds, then every periodSeconds; the result flips after successThreshold
 * consecutive successes or failureThreshold consecutive failures. Initial results: readiness and
 * startup "failure", liveness "success". `gate()` returning false (startup not yet succeeded)
 * skips an attempt, as the kubelet does for liveness and readiness.
 */
export class ProbeWorker {
  readonly kind: ProbeKind;
  result: boolean;
  lastMessage = '';
  private readonly probe: k8s.V1Probe;
  private readonly target: ProbeTarget;
  private readonly onChange: (kind: ProbeKind, ok: boolean, message: string) => void;
  private readonly gate: () => boolean;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private startedAt = 0;
  private inFlight = false;
  private pending = false;
  private successes = 0;
  private failures = 0;

  constructor(
    kind: ProbeKind,
    probe: k8s.V1Probe,
    target: ProbeTarget,
    onChange: ProbeWorker['onChange'],
    gate: () => boolean = () => true,
  ) {
    this.kind = kind;
    this.probe = probe;
    this.target = target;
    this.onChange = onChange;
    this.gate = gate;
    this.result = kind === 'liveness';
  }

  start(): void {
    this.startedAt = Date.now();
    this.timer = setTimeout(() => void this.tick(), (this.probe.initialDelaySeconds ?? 0) * 1000);
  }

  /**
   * Probes now and then every periodSeconds from now: the kubelet's manual run. Its prober manager
   * triggers the readiness worker whenever it updates the status of a started container whose
   * readiness has not succeeded yet (pkg/kubelet/prober/prober_manager.go, UpdatePodStatus →
   * worker.manualTriggerCh; the worker resets its ticker), so a pod is probed ready right after its
   * startup probe succeeds instead of at the readiness worker's next tick. Before initialDelaySeconds
   * the kubelet skips the attempt (worker.doProbe), and so does this.
   */
  trigger(): void {
    if (this.stopped) return;
    if (this.inFlight) {
      this.pending = true;
      return;
    }
    if (Date.now() - this.startedAt < (this.probe.initialDelaySeconds ?? 0) * 1000) return;
    clearTimeout(this.timer);
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const period = (this.probe.periodSeconds ?? 10) * 1000;
    const started = Date.now();
    if (this.gate()) {
      this.inFlight = true;
      const outcome = await runProbe(this.probe, this.target).finally(() => (this.inFlight = false));
      if (this.stopped) return;
      this.lastMessage = outcome.message;
      if (outcome.ok) {
        this.successes++;
        this.failures = 0;
      } else {
        this.failures++;
        this.successes = 0;
      }
      const needed = this.kind === 'readiness' ? (this.probe.successThreshold ?? 1) : 1;
      if (!this.result && outcome.ok && this.successes >= needed) {
        this.result = true;
        this.onChange(this.kind, true, outcome.message);
      } else if (!outcome.ok && this.failures >= (this.probe.failureThreshold ?? 3)) {
        const flipped = this.result;
        this.result = false;
        // A liveness or startup failure is reported every time the threshold is reached (the
        // container is restarted); readiness reports only the flip.
        if (flipped || this.kind !== 'readiness') this.onChange(this.kind, false, outcome.message);
        if (this.kind !== 'readiness') this.failures = 0;
      }
      if (this.kind === 'startup' && this.result) return; // startup probes stop after the first success
    }
    const next = this.pending ? 0 : Math.max(0, period - (Date.now() - started));
    this.pending = false;
    this.timer = setTimeout(() => void this.tick(), next);
  }
}
