import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

export interface ListWatchOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Collection path for the watch, e.g. `/api/v1/services`. */
  path: string;
  /** The matching list call (returns the body with `metadata.resourceVersion`). */
  list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
  /** Called after the cache changed (after the first list, then after every event). */
  onChange: () => void;
  onError?: (err: unknown, retryInMs: number) => void;
  /** Server-side bound of one watch request; it is then resumed from the last resourceVersion. */
  timeoutSeconds?: number;
  /** Initial back-off after an error, doubled up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

class ResourceExpired extends Error {}

/**
 * A reflector: lists a collection, then watches it from the list's resourceVersion with a bounded
 * `timeoutSeconds`, resuming from the last seen resourceVersion (bookmarks included) when the
 * server ends the watch. Any error (including 410 Gone and client-node's inactivity timeout)
 * leads to a fresh list after a back-off. Keeps the current objects by namespace/name.
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
    const synced = new Promise<void>((r) => { resolveSynced = r; });
    this.#loop = this.#run(resolveSynced);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no successful list of ${this.#o.path} within ${syncTimeoutMs} ms: ${String(this.#lastError ?? 'no answer')}`)), syncTimeoutMs);
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
          this.#cache.clear();
          for (const item of body.items) this.#cache.set(keyOf(item), item);
          this.#resourceVersion = body.metadata?.resourceVersion;
          needList = false;
          this.#synced = true;
          this.#o.onChange();
          onSynced();
        }
        await this.#watchOnce();
        backoff = base;
      } catch (err) {
        if (this.#stopped) return;
        this.#lastError = err;
        needList = true;
        const wait = err instanceof ResourceExpired ? 0 : backoff;
        this.#o.onError?.(err, wait);
        backoff = Math.min(backoff * 2, this.#o.maxBackoffMs ?? 5_000);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          this.#wake = () => { clearTimeout(t); resolve(); };
        });
        this.#wake = undefined;
      }
    }
  }

  /** One bounded watch request; resolves when the server ends it, rejects on any error. */
  async #watchOnce(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      let failure: unknown;
      const watch = new Watch(this.#o.kubeConfig);
      watch.watch(
        this.#o.path,
        { resourceVersion: this.#resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.#o.timeoutSeconds ?? 25 },
        (phase: string, obj: T & { code?: number; message?: string }) => {
          if (phase === 'ERROR') {
            // A Status object: 410 means our resourceVersion is too old; anything else, relist too.
            failure = obj.code === 410 ? new ResourceExpired(`watch ${this.#o.path}: ${obj.message ?? '410 Gone'}`) : new Error(`watch ${this.#o.path}: ${obj.message ?? JSON.stringify(obj)}`);
            this.#abort?.abort();
            return;
          }
          const rv = obj.metadata?.resourceVersion;
          if (rv) this.#resourceVersion = rv;
          if (phase === 'BOOKMARK') return;
          if (phase === 'DELETED') this.#cache.delete(keyOf(obj));
          else this.#cache.set(keyOf(obj), obj);
          this.#o.onChange();
        },
        (err: unknown) => {
          if (failure) reject(failure);
          else if (err && !this.#stopped) reject(err);
          else resolve();
        },
      ).then((ac) => {
        this.#abort = ac;
        if (this.#stopped) ac.abort();
      }, reject);
    });
  }
}

function keyOf(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}
