import { HttpMethod, RequestContext, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { fetch } from 'undici';
import { errorText } from '../errors.ts';
import type { RetryBackoff } from './backoff.ts';

export interface ListWatchOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Collection path for the watch, e.g. `/api/v1/services`. */
  path: string;
  /** The matching list call (returns the body with `metadata.resourceVersion`). */
  list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
  /** Called after the cache changed (after the first list, then after every event). */
  onChange: () => void;
  /**
   * Called for every object that changed, before `onChange`: from watch events, and after a
   * re-list for every difference between the old cache and the new list (so a change that
   * happened while a watch was down is not lost). Not called for the first list.
   */
  onObject?: (change: ObjectChange<T>) => void;
  onError?: (err: unknown, retryInMs: number) => void;
  /** Server-side bound of one watch request; it is then resumed from the last resourceVersion. */
  timeoutSeconds?: number;
  /** Initial back-off after an error, doubled up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * The waits after errors, instead of `backoffMs`/`maxBackoffMs` (e.g. client-go's reflector
   * back-off, ./backoff.ts, for a twin of a kubelet or kube-proxy). A 410 Gone re-lists at once either way.
   */
  backoff?: RetryBackoff;
  /**
   * Called after a re-list that ended a spell of errors (the apiserver was unreachable, a watch
   * failed): when the first of those errors came, how many there were, and how many objects the
   * re-list found changed meanwhile (each also given to `onObject` with `fromRelist`). The time
   * between is a gap in what this watch saw.
   */
  onResynced?: (gap: { since: number; errors: number; changed: number; at: number }) => void;
}

/** One object's change as the reflector saw it; `previous` is the cached object before it. */
export interface ObjectChange<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: T;
  previous: T | undefined;
  /** True when the change was found by comparing a re-list with the cache, not by a watch event. */
  fromRelist: boolean;
}

class ResourceExpired extends Error {}

/**
 * A reflector: lists a collection, then watches it from the list's resourceVersion with a bounded
 * `timeoutSeconds`, resuming from the last seen resourceVersion (bookmarks included) when the
 * server ends the watch. Any error (410 Gone, HTTP errors, a watch silent for timeoutSeconds + 15 s)
 * leads to a fresh list, after a back-off except for 410. Keeps the current objects by namespace/name.
 */
export class ListWatch<T extends KubernetesObject> {
  readonly #o: ListWatchOptions<T>;
  readonly #cache = new Map<string, T>();
  #resourceVersion: string | undefined;
  #stopped = false;
  #abort: AbortController | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #synced = false;
  #lastError: unknown;
  /** Since when the watch has been failing (null while it is healthy), and how often. */
  #failingSince: number | null = null;
  #errors = 0;

  constructor(opts: ListWatchOptions<T>) {
    this.#o = opts;
  }

  items(): T[] {
    return [...this.#cache.values()];
  }

  get synced(): boolean {
    return this.#synced;
  }

  get lastError(): unknown {
    return this.#lastError;
  }

  /** Starts the loop; resolves after the first successful list, rejects if none succeeds within `syncTimeoutMs`. */
  async start(syncTimeoutMs = 30_000): Promise<void> {
    if (this.#loop) throw new Error('ListWatch already started');
    let resolveSynced!: () => void;
    const synced = new Promise<void>((r) => {
      resolveSynced = r;
    });
    this.#loop = this.#run(resolveSynced);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `no successful list of ${this.#o.path} within ${syncTimeoutMs} ms: ${this.#lastError === undefined ? 'no answer' : errorText(this.#lastError)}`,
            ),
          ),
        syncTimeoutMs,
      );
    });
    try {
      await Promise.race([synced, timeout]);
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort?.abort();
    this.#wake?.();
    await this.#loop;
  }

  async #run(onSynced: () => void): Promise<void> {
    const base = this.#o.backoffMs ?? 200;
    let backoff = base;
    let needList = true;
    while (!this.#stopped) {
      try {
        if (needList) {
          const body = await this.#o.list();
          if (this.#stopped) return;
          const old = this.#synced ? new Map(this.#cache) : undefined;
          this.#cache.clear();
          for (const item of body.items) this.#cache.set(keyOf(item), item);
          const changed = old && this.#o.onObject ? this.#diff(old) : 0;
          this.#resourceVersion = body.metadata?.resourceVersion;
          needList = false;
          const wasSynced = this.#synced;
          this.#synced = true;
          this.#o.onChange();
          onSynced();
          if (this.#failingSince !== null && wasSynced)
            this.#o.onResynced?.({ since: this.#failingSince, errors: this.#errors, changed, at: Date.now() });
          this.#failingSince = null;
          this.#errors = 0;
        }
        await this.#watchOnce();
        backoff = base;
      } catch (err) {
        if (this.#stopped) return;
        this.#lastError = err;
        this.#failingSince ??= Date.now();
        this.#errors++;
        needList = true;
        const expired = err instanceof ResourceExpired;
        const wait = expired ? 0 : this.#o.backoff ? this.#o.backoff.next() : backoff;
        this.#o.onError?.(err, wait);
        if (!expired) backoff = Math.min(backoff * 2, this.#o.maxBackoffMs ?? 5_000);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          this.#wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    }
  }

  /**
   * One bounded watch request; resolves when the server ends it, rejects on any error. Our own
   * request (not client-node's Watch) so that stop() can abort it even before the response
   * headers arrive, and so that a watch silent for longer than timeoutSeconds + 15 s is cut.
   */
  async #watchOnce(): Promise<void> {
    const cluster = this.#o.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const timeoutSeconds = this.#o.timeoutSeconds ?? 25;
    const url = new URL(cluster.server + this.#o.path);
    url.searchParams.set('watch', 'true');
    url.searchParams.set('allowWatchBookmarks', 'true');
    url.searchParams.set('timeoutSeconds', String(timeoutSeconds));
    if (this.#resourceVersion) url.searchParams.set('resourceVersion', this.#resourceVersion);
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    await this.#o.kubeConfig.applySecurityAuthentication(ctx);
    const abort = new AbortController();
    this.#abort = abort;
    if (this.#stopped) return;
    let timer: NodeJS.Timeout | undefined;
    const armSilenceTimer = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => abort.abort(new Error(`watch ${this.#o.path} silent for ${timeoutSeconds + 15} s`)),
        (timeoutSeconds + 15) * 1000,
      );
    };
    armSilenceTimer();
    try {
      const res = await fetch(url, { headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher(), signal: abort.signal });
      if (res.status !== 200 || !res.body) {
        const text = await res.text().catch(() => '');
        throw new Error(`watch ${this.#o.path}: HTTP ${res.status} ${text.slice(0, 300)}`);
      }
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of res.body) {
        armSilenceTimer();
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) this.#onWatchEvent(JSON.parse(line) as { type: string; object: T & { code?: number; message?: string } });
        }
      }
    } catch (err) {
      if (this.#stopped) return;
      throw abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason : err;
    } finally {
      clearTimeout(timer);
      abort.abort(); // an ERROR event or a parse failure leaves the response open otherwise
      if (this.#abort === abort) this.#abort = undefined;
    }
  }

  /** After a re-list: report what appeared, changed (by resourceVersion) or disappeared meanwhile; returns how many. */
  #diff(old: Map<string, T>): number {
    const emit = this.#o.onObject!;
    let n = 0;
    for (const [key, obj] of this.#cache) {
      const prev = old.get(key);
      if (!prev) {
        emit({ type: 'ADDED', object: obj, previous: undefined, fromRelist: true });
        n++;
      } else if (prev.metadata?.resourceVersion !== obj.metadata?.resourceVersion) {
        emit({ type: 'MODIFIED', object: obj, previous: prev, fromRelist: true });
        n++;
      }
    }
    for (const [key, prev] of old) {
      if (!this.#cache.has(key)) {
        emit({ type: 'DELETED', object: prev, previous: prev, fromRelist: true });
        n++;
      }
    }
    return n;
  }

  #onWatchEvent(ev: { type: string; object: T & { code?: number; message?: string } }): void {
    const obj = ev.object;
    if (ev.type === 'ERROR') {
      // A Status object: 410 means our resourceVersion is too old; anything else, re-list too.
      const message = `watch ${this.#o.path}: ${obj.message ?? JSON.stringify(obj)}`;
      throw obj.code === 410 ? new ResourceExpired(message) : new Error(message);
    }
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.#resourceVersion = rv;
    if (ev.type === 'BOOKMARK') return;
    const key = keyOf(obj);
    const previous = this.#cache.get(key);
    if (ev.type === 'DELETED') this.#cache.delete(key);
    else this.#cache.set(key, obj);
    if (this.#o.onObject && (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED')) {
      this.#o.onObject({ type: ev.type, object: obj, previous, fromRelist: false });
    }
    this.#o.onChange();
  }
}

function keyOf(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}
