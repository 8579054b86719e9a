import { k8s } from './client.ts';

export interface PodEvent {
  /** Epoch ms when the change was seen. */
  at: number;
  pod: string;
  version: string | null;
  change: 'created' | 'ready' | 'unready' | 'terminating' | 'gone';
}

/**
 * Watches a label selector's pods by polling (every `everyMs`) and records each change a failure
 * may be explained by: a pod appearing, turning ready or unready, getting its deletionTimestamp,
 * disappearing. Polling, not a watch: a silent watch would leave holes in the evidence.
 */
export class PodTimeline {
  readonly events: PodEvent[] = [];
  private readonly core: k8s.CoreV1Api;
  private readonly namespace: string;
  private readonly selector: string;
  private readonly known = new Map<string, { ready: boolean; terminating: boolean; version: string | null }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Fewest ready, non-terminating pods seen, and most non-terminating pods seen. */
  minReady = Infinity;
  maxActive = 0;
  samples = 0;

  constructor(kc: k8s.KubeConfig, namespace: string, selector: string) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.namespace = namespace;
    this.selector = selector;
  }

  async start(everyMs = 200): Promise<void> {
    await this.poll();
    const loop = () => { this.timer = setTimeout(() => { this.running = this.poll().catch(() => {}).then(loop); }, everyMs); };
    loop();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    clearTimeout(this.timer);
  }

  private async poll(): Promise<void> {
    const pods = (await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.selector })).items;
    const at = Date.now();
    const seen = new Set<string>();
    let ready = 0;
    let active = 0;
    for (const p of pods) {
      const name = p.metadata!.name!;
      seen.add(name);
      const isReady = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      const terminating = !!p.metadata?.deletionTimestamp;
      const version = p.metadata?.labels?.['app.kubernetes.io/version'] ?? null;
      if (!terminating) { active++; if (isReady) ready++; }
      const prev = this.known.get(name);
      if (!prev) this.events.push({ at, pod: name, version, change: 'created' });
      if (isReady !== (prev?.ready ?? false)) this.events.push({ at, pod: name, version, change: isReady ? 'ready' : 'unready' });
      if (terminating && !prev?.terminating) this.events.push({ at, pod: name, version, change: 'terminating' });
      this.known.set(name, { ready: isReady, terminating, version });
    }
    for (const [name, k] of this.known) {
      if (!seen.has(name)) { this.events.push({ at, pod: name, version: k.version, change: 'gone' }); this.known.delete(name); }
    }
    this.samples++;
    this.minReady = Math.min(this.minReady, ready);
    this.maxActive = Math.max(this.maxActive, active);
  }

  /** The last events of `pod` at or before `at` (for explaining a failed request). */
  before(pod: string, at: number, n = 3): PodEvent[] {
    return this.events.filter((e) => e.pod === pod && e.at <= at).slice(-n);
  }
}
