/**
 * The watched timeline of a run: what the cluster did (pods, EndpointSlices, Nodes, Events) and
 * what the harness did to it (chaos actions, experiment phases), each change with the time it was
 * seen. Failed requests are explained by joining them with this timeline (see `causes.ts`).
 *
 * Watches, not polls: every readiness flip reaches us, however short. Each watch re-lists and
 * resumes when it expires (lib/kube/list-watch.ts); a change that happened while a watch was down
 * is found by diffing the re-list and recorded with `(seen on re-list)`, at the time it was seen.
 * A spell in which a watch could not reach the apiserver (a control-plane outage) is a gap: marked
 * on the timeline (`watch/<what>` lost, then resumed with what the re-list found changed unseen)
 * and kept in `gaps`, so that a report can say what the harness did not see as it happened.
 */
import type { KubeConfig, KubernetesObject, V1EndpointSlice, V1Node, V1Pod, CoreV1Event } from '@kubernetes/client-node';
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { ListWatch, type ObjectChange } from '../kube/list-watch.ts';

export interface TimelineEvent {
  /** Epoch ms when the change was seen. */
  at: number;
  kind: 'pod' | 'endpoint' | 'node' | 'event' | 'chaos' | 'phase' | 'watch';
  /** `pod/<name>`, `node/<name>`, `dependency/<name>`, `Pod/<name>` (an Event's object), ... */
  object: string;
  change: string;
  detail: string | null;
}

/** A pod's state from some instant on. */
export interface PodState {
  at: number;
  exists: boolean;
  ready: boolean;
  /** deletionTimestamp set. */
  terminating: boolean;
  version: string | null;
  ip: string | null;
  node: string | null;
  restarts: number;
}

/** A pod's endpoint in the Service's EndpointSlices from some instant on. */
export interface EndpointState {
  at: number;
  listed: boolean;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

/** A spell in which one of the timeline's watches could not see the cluster (its apiserver unreachable, a watch failed). */
export interface WatchGap {
  /** What was watched: `pods`, `endpointslices`, `nodes`, `events`. */
  watch: string;
  /** The first error, and the re-list that ended the spell (epoch ms). */
  from: number;
  to: number;
  errors: number;
  /** What the re-list found changed meanwhile (`pod/x restarted`, ...): changes that happened unseen, at unknown times. */
  unseen: string[];
}

/** Ready and active (non-terminating) pods of the workload from some instant on. */
export interface CapacitySample {
  at: number;
  ready: number;
  active: number;
  /** Terminating pods included. */
  total: number;
}

export interface TimelineOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Label selector of the workload's pods, e.g. `app=license-api`. */
  selector: string;
  /** The Service whose EndpointSlices route to those pods (label kubernetes.io/service-name). */
  service?: string;
  /** Watch Nodes (cordon, Ready). Default true. */
  nodes?: boolean;
  /** Watch the namespace's Events. Default true. */
  kubeEvents?: boolean;
  /** Server-side bound of each watch request (it is resumed afterwards). Default 25 s. */
  watchTimeoutSeconds?: number;
  /** Clock (tests). */
  now?: () => number;
}

const VERSION_LABEL = 'app.kubernetes.io/version';

/**
 * The timeline's store and queries: fed with object changes (by {@link ClusterTimeline}'s watches,
 * or directly in tests), it keeps every pod's and endpoint's state history.
 */
export class Timeline {
  readonly events: TimelineEvent[] = [];
  readonly capacity: CapacitySample[] = [];
  /** Watch errors (each followed by a re-list): evidence that the timeline may have holes. */
  readonly watchErrors: string[] = [];
  /** Spells in which a watch saw nothing (see {@link WatchGap}), oldest first. */
  readonly gaps: WatchGap[] = [];
  protected readonly now: () => number;
  readonly #pods = new Map<string, PodState[]>();
  readonly #endpoints = new Map<string, EndpointState[]>();
  /** Events of objects older than this are not news (set when the watches synced). */
  protected eventsSince: number | undefined;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Everything the watches deliver goes through these. */
  ingestPod(c: ObjectChange<V1Pod>, at = this.now(), baseline = false): void {
    this.#onPod(c, at, baseline);
  }
  ingestSlices(slices: V1EndpointSlice[], at = this.now(), fromRelist = false): void {
    this.#onSlices(slices, at, fromRelist);
  }
  ingestNode(c: ObjectChange<V1Node>, at = this.now()): void {
    this.#onNode(c, at);
  }
  ingestEvent(c: ObjectChange<CoreV1Event>, at = this.now()): void {
    this.#onEvent(c, at);
  }

  /** Puts a harness action on the timeline (a pod deleted, a node cordoned, an outage begun). */
  action(object: string, change: string, detail: string | null = null, at = this.now()): TimelineEvent {
    const e: TimelineEvent = { at, kind: 'chaos', object, change, detail };
    this.events.push(e);
    return e;
  }

  /** A watch lost the cluster at `at` (the first error of a spell). */
  watchLost(watch: string, error: string, at = this.now()): void {
    this.events.push({ at, kind: 'watch', object: `watch/${watch}`, change: 'lost', detail: error.slice(0, 300) });
  }

  /** A watch is back: the gap from its first error to this re-list, and what the re-list found changed unseen. */
  watchResumed(g: WatchGap): void {
    this.gaps.push(g);
    const shown = g.unseen.slice(0, 20).join(', ');
    this.events.push({
      at: g.to,
      kind: 'watch',
      object: `watch/${g.watch}`,
      change: 'resumed',
      detail:
        `blind for ${((g.to - g.from) / 1000).toFixed(1)} s (${g.errors} errors); ` +
        (g.unseen.length
          ? `${g.unseen.length} changes happened unseen, found on re-list: ${shown}${g.unseen.length > 20 ? ', ...' : ''}`
          : 'the re-list found nothing changed'),
    });
  }

  /** The gaps that overlap [from, to], merged across watches: when the harness saw nothing of the cluster. */
  gapsBetween(from: number, to: number): WatchGap[] {
    return this.gaps.filter((g) => g.to >= from && g.from <= to);
  }

  /** Marks an experiment phase (`load-start`, `rollout-start`, `settle`, ...). */
  phase(name: string, detail: string | null = null, at = this.now()): void {
    this.events.push({ at, kind: 'phase', object: 'experiment', change: name, detail });
  }

  /** The pod's state at `t` (undefined when the pod was never seen). */
  podAt(pod: string, t: number): PodState | undefined {
    return stateAt(this.#pods.get(pod), t);
  }

  /**
   * When the pod was seen turning Ready for the first time (a transition watched, not a pod that
   * was Ready when the watches began), or undefined: where a new pod's cold start begins.
   */
  becameReadyAt(pod: string): number | undefined {
    const h = this.#pods.get(pod);
    if (!h) return undefined;
    for (let i = 1; i < h.length; i++) if (h[i].ready && h[i].exists && !h[i - 1].ready) return h[i].at;
    return undefined;
  }

  /** When the pod was first seen terminating (deletionTimestamp), or undefined. */
  terminatingSince(pod: string): number | undefined {
    return this.#pods.get(pod)?.find((s) => s.terminating)?.at;
  }

  /** The pod's endpoint at `t` (undefined when it never appeared in an EndpointSlice). */
  endpointAt(pod: string, t: number): EndpointState | undefined {
    return stateAt(this.#endpoints.get(pod), t);
  }

  /** When the pod's endpoint last stopped taking new connections (not listed or not ready) at or before `t`. */
  endpointGoneSince(pod: string, t: number): number | undefined {
    const h = this.#endpoints.get(pod);
    if (!h) return undefined;
    let since: number | undefined;
    for (const s of h) {
      if (s.at > t) break;
      const routable = s.listed && s.ready;
      if (!routable && since === undefined) since = s.at;
      if (routable) since = undefined;
    }
    return since;
  }

  /** Pods that were terminating at `t`. */
  terminatingAt(t: number): string[] {
    const out: string[] = [];
    for (const [name, h] of this.#pods) {
      const s = stateAt(h, t);
      if (s?.exists && s.terminating) out.push(name);
    }
    return out;
  }

  /** Pod names ever seen. */
  podNames(): string[] {
    return [...this.#pods.keys()];
  }

  /** The last events of `pod` at or before `at`. */
  before(pod: string, at: number, n = 3): TimelineEvent[] {
    const object = `pod/${pod}`;
    const out: TimelineEvent[] = [];
    for (let i = this.events.length - 1; i >= 0 && out.length < n; i--) {
      const e = this.events[i];
      if (e.at <= at && (e.object === object || (e.kind === 'endpoint' && e.object === `endpoint/${pod}`))) out.unshift(e);
    }
    return out;
  }

  /** Milliseconds between `from` and `to` during which no pod was Ready. */
  noneReadyMs(from: number, to: number): number {
    let total = 0;
    let state = stateAt(this.capacity, from);
    let at = from;
    for (const c of this.capacity.filter((x) => x.at > from && x.at <= to)) {
      if (state && state.ready === 0) total += c.at - at;
      state = c;
      at = c.at;
    }
    if (state && state.ready === 0) total += to - at;
    return total;
  }

  /** Fewest ready and most active (non-terminating) pods between `from` and `to` (the state at `from` included). */
  capacityBetween(from: number, to: number): { minReady: number; maxActive: number; maxTotal: number; changes: number } | null {
    if (this.capacity.length === 0) return null;
    let minReady = Infinity;
    let maxActive = 0;
    let maxTotal = 0;
    let changes = 0;
    const first = stateAt(this.capacity, from);
    const window = this.capacity.filter((c) => c.at > from && c.at <= to);
    for (const c of first ? [first, ...window] : window) {
      minReady = Math.min(minReady, c.ready);
      maxActive = Math.max(maxActive, c.active);
      maxTotal = Math.max(maxTotal, c.total);
      changes++;
    }
    return changes ? { minReady, maxActive, maxTotal, changes } : null;
  }

  #onPod(c: ObjectChange<V1Pod>, at = this.now(), baseline = false): void {
    const p = c.object;
    const name = p.metadata?.name;
    if (!name) return;
    const history = this.#pods.get(name) ?? [];
    // The baseline comes after the first list; a watch event that arrived meanwhile is newer.
    if (baseline && history.length) return;
    const prev = history.at(-1);
    const next: PodState =
      c.type === 'DELETED' ? { ...(prev ?? podState(p, at)), at, exists: false, ready: false } : podState(p, at);
    if (prev && samePodState(prev, next)) return;
    const object = `pod/${name}`;
    const relist = c.fromRelist ? 'seen on re-list' : null;
    const say = (change: string, detail: string | null = relist) => this.events.push({ at, kind: 'pod', object, change, detail });
    // A pod deleted with grace 0 (kubectl delete --force, a lost node's pods) goes in one event:
    // it terminated at that instant, so what was in flight on it was cut by its termination.
    if (c.type === 'DELETED' && prev?.exists && !prev.terminating && p.metadata?.deletionTimestamp) {
      history.push({ ...prev, at, terminating: true, ready: false });
      say('terminating', `deleted at once (grace ${p.metadata.deletionGracePeriodSeconds ?? 0} s)`);
    }
    history.push(next);
    this.#pods.set(name, history);
    if (!prev)
      say(
        baseline ? 'present' : 'created',
        [next.version && `version ${next.version}`, next.node && `node ${next.node}`, relist].filter(Boolean).join(', ') || null,
      );
    if (next.exists && prev?.exists !== false) {
      if (next.ready !== (prev?.ready ?? false) && (prev || next.ready)) say(next.ready ? 'ready' : 'unready');
      if (next.terminating && !prev?.terminating) say('terminating');
      if (prev && next.restarts > prev.restarts) say('restarted', `restart count ${next.restarts}`);
      if (prev && !prev.node && next.node) say('scheduled', `node ${next.node}`);
    }
    if (!next.exists) say('gone');
    this.#recordCapacity(at);
  }

  #recordCapacity(at: number): void {
    let ready = 0;
    let active = 0;
    let total = 0;
    for (const h of this.#pods.values()) {
      const s = h.at(-1)!;
      if (!s.exists) continue;
      total++;
      if (!s.terminating) {
        active++;
        if (s.ready) ready++;
      }
    }
    const last = this.capacity.at(-1);
    if (last && last.ready === ready && last.active === active && last.total === total) return;
    this.capacity.push({ at, ready, active, total });
  }

  #onSlices(slices: V1EndpointSlice[], at = this.now(), fromRelist = false): void {
    const now = new Map<string, Omit<EndpointState, 'at'>>();
    for (const s of slices) {
      for (const ep of s.endpoints ?? []) {
        const pod = ep.targetRef?.kind === 'Pod' ? ep.targetRef.name : undefined;
        if (!pod) continue;
        const cond = ep.conditions ?? {};
        // EndpointSlice semantics: a nil `ready` means ready; serving defaults to ready.
        const ready = cond.ready ?? true;
        now.set(pod, { listed: true, ready, serving: cond.serving ?? ready, terminating: cond.terminating ?? false });
      }
    }
    const names = new Set([...now.keys(), ...this.#endpoints.keys()]);
    for (const pod of names) {
      const h = this.#endpoints.get(pod) ?? [];
      const prev = h.at(-1);
      const cur = now.get(pod) ?? { listed: false, ready: false, serving: false, terminating: false };
      if (
        prev &&
        prev.listed === cur.listed &&
        prev.ready === cur.ready &&
        prev.serving === cur.serving &&
        prev.terminating === cur.terminating
      )
        continue;
      if (!prev && !cur.listed) continue;
      h.push({ at, ...cur });
      this.#endpoints.set(pod, h);
      const change = !cur.listed
        ? 'endpoint-removed'
        : cur.ready
          ? prev?.listed
            ? 'endpoint-ready'
            : 'endpoint-added'
          : cur.terminating
            ? 'endpoint-terminating'
            : 'endpoint-not-ready';
      this.events.push({
        at,
        kind: 'endpoint',
        object: `endpoint/${pod}`,
        change,
        detail:
          [
            cur.listed ? `ready=${cur.ready} serving=${cur.serving} terminating=${cur.terminating}` : null,
            fromRelist ? 'seen on re-list' : null,
          ]
            .filter(Boolean)
            .join(', ') || null,
      });
    }
  }

  #onNode(c: ObjectChange<V1Node>, at: number): void {
    const n = c.object;
    const name = n.metadata?.name ?? '?';
    const say = (change: string, detail: string | null = null) =>
      this.events.push({ at, kind: 'node', object: `node/${name}`, change, detail });
    if (c.type === 'DELETED') {
      say('gone');
      return;
    }
    const prev = c.previous;
    const ready = (x?: V1Node) => x?.status?.conditions?.some((k) => k.type === 'Ready' && k.status === 'True') ?? false;
    if (!prev) {
      say('added', ready(n) ? 'Ready' : 'not Ready');
      return;
    }
    if (!!prev.spec?.unschedulable !== !!n.spec?.unschedulable) say(n.spec?.unschedulable ? 'cordoned' : 'uncordoned');
    if (ready(prev) !== ready(n)) say(ready(n) ? 'ready' : 'not-ready');
  }

  #onEvent(c: ObjectChange<CoreV1Event>, at: number): void {
    if (c.type === 'DELETED') return;
    const e = c.object;
    // Only events that happened while we watched: an old event's re-delivery is not news.
    const when = Date.parse(String(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? ''));
    if (this.eventsSince === undefined || (Number.isFinite(when) && when < this.eventsSince - 1000)) return;
    if (c.previous && c.previous.count === e.count) return;
    const obj = e.involvedObject;
    this.events.push({
      at,
      kind: 'event',
      object: `${obj?.kind ?? '?'}/${obj?.name ?? '?'}`,
      change: e.reason ?? 'Event',
      detail: `${e.type ?? 'Normal'}: ${(e.message ?? '').slice(0, 300)}${(e.count ?? 1) > 1 ? ` (x${e.count})` : ''}`,
    });
  }
}

/** A {@link Timeline} fed by watches of one workload's pods, its Service's EndpointSlices, the Nodes and the namespace's Events. */
export class ClusterTimeline extends Timeline {
  readonly #o: TimelineOptions;
  /** Watches of different kinds: only started and stopped together here. */
  readonly #watches: Array<Pick<ListWatch<KubernetesObject>, 'start' | 'stop'>> = [];
  #started = false;
  #syncedAt: number | undefined;

  constructor(o: TimelineOptions) {
    super(o.now);
    this.#o = o;
  }

  /** When every watch had its first list (null before). */
  get syncedAt(): number | null {
    return this.#syncedAt ?? null;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('timeline already started');
    this.#started = true;
    const { kubeConfig: kc, namespace: ns } = this.#o;
    const core = kc.makeApiClient(CoreV1Api);
    const sel = encodeURIComponent(this.#o.selector);
    const pods = this.#watch<V1Pod>('pods', {
      path: `/api/v1/namespaces/${ns}/pods?labelSelector=${sel}`,
      list: () => core.listNamespacedPod({ namespace: ns, labelSelector: this.#o.selector }),
      ingest: (c) => this.ingestPod(c),
    });
    let slices: ListWatch<V1EndpointSlice> | undefined;
    if (this.#o.service) {
      const discovery = kc.makeApiClient(DiscoveryV1Api);
      const label = `kubernetes.io/service-name=${this.#o.service}`;
      slices = this.#watch<V1EndpointSlice>('endpointslices', {
        path: `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${encodeURIComponent(label)}`,
        list: () => discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: label }),
        // The slices are judged as a set (each change recomputes every endpoint): see onChange.
        ingest: () => {},
        onChange: (relist) => this.ingestSlices(slices!.items(), this.now(), relist),
      });
    }
    if (this.#o.nodes ?? true)
      this.#watch<V1Node>('nodes', { path: '/api/v1/nodes', list: () => core.listNode({}), ingest: (c) => this.ingestNode(c) });
    if (this.#o.kubeEvents ?? true)
      this.#watch<CoreV1Event>('events', {
        path: `/api/v1/namespaces/${ns}/events`,
        list: () => core.listNamespacedEvent({ namespace: ns }),
        ingest: (c) => this.ingestEvent(c),
      });
    try {
      await Promise.all(this.#watches.map((w) => w.start()));
    } catch (err) {
      await this.stop();
      throw err;
    }
    // The first lists are the baseline: record the pods and endpoints as they are.
    const at = this.now();
    this.eventsSince = at;
    for (const p of pods.items()) this.ingestPod({ type: 'ADDED', object: p, previous: undefined, fromRelist: false }, at, true);
    if (slices) this.ingestSlices(slices.items(), at);
    this.#syncedAt = at;
  }

  async stop(): Promise<void> {
    await Promise.all(this.#watches.map((w) => w.stop()));
  }

  /**
   * One watch of the timeline, with its gaps: the first error of a spell marks it lost, the re-list
   * that ends the spell marks it resumed with the events its changes made (those happened unseen).
   */
  #watch<T extends KubernetesObject>(
    name: string,
    w: {
      path: string;
      list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
      ingest: (c: ObjectChange<T>) => void;
      /** After every change; `relist`: it came from a re-list's diff. */
      onChange?: (relist: boolean) => void;
    },
  ): ListWatch<T> {
    let lost = false;
    let relisted = false;
    let unseen: string[] = [];
    const lw = new ListWatch<T>({
      kubeConfig: this.#o.kubeConfig,
      path: w.path,
      timeoutSeconds: this.#o.watchTimeoutSeconds ?? 25,
      list: w.list,
      onObject: (c) => {
        const before = this.events.length;
        w.ingest(c);
        if (!c.fromRelist) return;
        relisted = true;
        unseen.push(...this.events.slice(before).map((e) => `${e.object} ${e.change}`));
        if (this.events.length === before && !w.onChange)
          unseen.push(`${name.replace(/s$/, '')}/${c.object.metadata?.name ?? '?'} ${c.type.toLowerCase()}`);
      },
      onChange: () => {
        const before = this.events.length;
        w.onChange?.(relisted);
        if (relisted) unseen.push(...this.events.slice(before).map((e) => `${e.object} ${e.change}`));
        relisted = false;
      },
      onError: (err) => {
        const message = String((err as Error)?.message ?? err);
        this.watchErrors.push(`${new Date(this.now()).toISOString()} ${name}: ${message}`);
        if (!lost && this.#syncedAt !== undefined) this.watchLost(name, message);
        lost = true;
      },
      onResynced: (g) => {
        if (this.#syncedAt !== undefined) this.watchResumed({ watch: name, from: g.since, to: g.at, errors: g.errors, unseen });
        unseen = [];
        lost = false;
      },
    });
    this.#watches.push(lw);
    return lw;
  }
}

function podState(p: V1Pod, at: number): PodState {
  return {
    at,
    exists: true,
    ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    terminating: !!p.metadata?.deletionTimestamp,
    version: p.metadata?.labels?.[VERSION_LABEL] ?? null,
    ip: p.status?.podIP ?? null,
    node: p.spec?.nodeName ?? null,
    restarts: (p.status?.containerStatuses ?? []).reduce((n, s) => n + (s.restartCount ?? 0), 0),
  };
}

function samePodState(a: PodState, b: PodState): boolean {
  return (
    a.exists === b.exists &&
    a.ready === b.ready &&
    a.terminating === b.terminating &&
    a.ip === b.ip &&
    a.node === b.node &&
    a.restarts === b.restarts
  );
}

/** The last state at or before `t` in a time-ordered history. */
function stateAt<S extends { at: number }>(history: S[] | undefined, t: number): S | undefined {
  if (!history?.length) return undefined;
  let lo = 0;
  let hi = history.length - 1;
  if (history[0].at > t) return undefined;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (history[mid].at <= t) lo = mid;
    else hi = mid - 1;
  }
  return history[lo];
}
