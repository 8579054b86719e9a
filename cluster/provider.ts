/**
 * Where the harness runs: one interface over the cluster providers (embedded, kind, an existing
 * kubeconfig context), in the manner of e2e-framework's providers.
 */
export type ProviderName = 'embedded' | 'kind' | 'existing';

export interface Cluster extends AsyncDisposable {
  readonly provider: ProviderName;
  readonly name: string;
  /** Path of a kubeconfig whose current context is this cluster. */
  readonly kubeconfig: string;
  /** Base URL of a NodePort Service from this machine (always a loopback address). */
  serviceUrl(nodePort: number): string;
  /** Makes `license-api:<tag>` runnable in the cluster (build + load). */
  loadLicenseApiImage(tag: string): Promise<void>;
  /** Stops and removes everything the provider created. Idempotent. */
  down(): Promise<void>;
}

export interface UpOptions {
  name?: string;
  nodes?: number;
  stateDir?: string;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
}

export interface ClusterProvider {
  readonly name: ProviderName;
  /** Whether this provider can run here, and if not, what to do about it. */
  available(): Promise<{ ok: true } | { ok: false; reason: string }>;
  up(opts: UpOptions): Promise<Cluster>;
}
