/**
 * Google Managed Prometheus: the Prometheus HTTP API served by Cloud Monitoring at
 * `https://monitoring.googleapis.com/v1/projects/<project>/location/global/prometheus`, called with
 * an OAuth access token from Application Default Credentials (google-auth-library's GoogleAuth:
 * GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login, workload identity, the
 * metadata server). The queries, steps and fail-closed rules are the PromQL source's.
 */
import { GoogleAuth } from 'google-auth-library';
import { PromqlSource, type PromqlSourceOptions } from './promql.ts';
import { GCP_PROJECT_FLAG, PROMQL_SELECTOR_FLAG, SourceUsageError, type MetricSourceProvider } from './provider.ts';

export const GMP_SCOPE = 'https://www.googleapis.com/auth/monitoring.read';

export interface GmpSourceOptions extends Omit<PromqlSourceOptions, 'baseUrl' | 'headers' | 'kind' | 'authHint'> {
  project: string;
  /** Default the Cloud Monitoring endpoint for `project`; tests point it at a local server. */
  baseUrl?: string;
  /** A ready GoogleAuth (scopes included) instead of ADC's own search (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server). */
  auth?: GoogleAuth;
}

export function gmpBaseUrl(project: string): string {
  return `https://monitoring.googleapis.com/v1/projects/${encodeURIComponent(project)}/location/global/prometheus`;
}

/** The GMP source: a {@link PromqlSource} whose every request carries `Authorization: Bearer <ADC token>`. */
export function gmpSource(o: GmpSourceOptions): PromqlSource {
  if (!o.project || !/^[a-z0-9][a-z0-9.:-]*$/i.test(o.project)) {
    throw new RangeError(`gmp: ${JSON.stringify(o.project)} is not a Google Cloud project id or number`);
  }
  // The project is known: without it ADC would go looking for one (gcloud, the metadata server, the
  // Resource Manager API) before giving a token.
  const auth = o.auth ?? new GoogleAuth({ scopes: [GMP_SCOPE], projectId: o.project });
  const { project, auth: _a, baseUrl, ...rest } = o;
  return new PromqlSource({
    ...rest,
    kind: 'gmp',
    name: o.name ?? 'gmp',
    baseUrl: baseUrl ?? gmpBaseUrl(project),
    authHint: `the Application Default Credentials need roles/monitoring.viewer on project ${project}`,
    headers: async (signal) => {
      // getAccessToken takes no signal: race it, so a stalled token endpoint cannot outlive the deadline.
      const token = await Promise.race([
        auth.getAccessToken(),
        new Promise<never>((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
      ]).catch((err: unknown) => {
        if (signal.aborted) throw err;
        throw new Error(
          `no access token from Application Default Credentials: ${(err as Error)?.message ?? err} ` +
            '(run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a credentials file)',
        );
      });
      if (!token) throw new Error('Application Default Credentials gave an empty access token');
      return { authorization: `Bearer ${token}` };
    },
  });
}

/** `--source gmp`: Google Managed Prometheus. */
export const gmpProvider: MetricSourceProvider = {
  name: 'gmp',
  flags: [
    GCP_PROJECT_FLAG,
    { flag: '--gmp-url <url>', description: "the Prometheus API base URL (default Cloud Monitoring's)" },
    PROMQL_SELECTOR_FLAG,
  ],
  create(v) {
    if (!v.project)
      throw new SourceUsageError(
        '--source gmp needs --project (the Google Cloud project whose Managed Prometheus holds the metrics)',
      );
    return gmpSource({ project: v.project, baseUrl: v['gmp-url'], selector: v['promql-selector'] });
  },
};
