/**
 * The Cloud Monitoring source: `MetricServiceClient.listTimeSeries` from @google-cloud/monitoring
 * (gRPC). Requests by response code class, e.g. the external HTTPS load balancer's
 * `loadbalancing.googleapis.com/https/request_count` (label `response_code_class`: 200, 300, 400,
 * 500) aligned with ALIGN_DELTA per step and summed per class (REDUCE_SUM); optionally a latency
 * distribution (`…/https/total_latencies`, ms) reduced to its 99th percentile over the window.
 *
 * A Cloud Monitoring filter names exactly one `metric.type`, so counts and latency are two
 * filters. Credentials are the client's own (ADC); `sslCreds` replaces them with channel
 * credentials of your choice (the tests: an insecure channel to a local server).
 */
import { MetricServiceClient, type protos } from '@google-cloud/monitoring';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { GCP_PROJECT_FLAG, SourceUsageError, type MetricSourceProvider } from './provider.ts';
import {
  abortedByCaller,
  boundPoints,
  checkWindow,
  DEFAULT_TIMEOUT_MS,
  describeError,
  evidenceWindow,
  failed,
  quote,
  type Counts,
  type Measurement,
  type MetricSource,
  type MetricWindow,
} from './source.ts';

type TimeSeries = protos.google.monitoring.v3.ITimeSeries;

const BACKSTOP_MS = 2000;

export const LB_REQUEST_COUNT_FILTER =
  'metric.type="loadbalancing.googleapis.com/https/request_count" AND resource.type="https_lb_rule"';
export const LB_LATENCY_FILTER =
  'metric.type="loadbalancing.googleapis.com/https/total_latencies" AND resource.type="https_lb_rule"';

export interface CloudMonitoringSourceOptions {
  /** Project id or number whose metrics are read (`projects/<project>`). */
  project: string;
  name?: string;
  /** Request counts, one metric type; narrow it to the workload (e.g. `AND resource.label.url_map_name="…"`). Default {@link LB_REQUEST_COUNT_FILTER}. */
  requestFilter?: string;
  /** The label holding the response code class (values like `500` or `5xx`). Default `metric.label.response_code_class`. */
  classField?: string;
  /** A label that names the app version, to count per version; default none (load balancer metrics have none). */
  versionField?: string;
  /** A latency distribution in milliseconds reduced to p99; null for none. Default null (LB_LATENCY_FILTER is the usual choice). */
  latencyFilter?: string | null;
  /** Alignment period of the counts (Cloud Monitoring's minimum is 60 s). Default 60. */
  stepSeconds?: number;
  /** Fewer points than this in the counts is no-data. Default 1. */
  minSamples?: number;
  timeoutMs?: number;
  /** Endpoint and port instead of monitoring.googleapis.com:443 (a regional or test endpoint). */
  apiEndpoint?: string;
  port?: number;
  /** Channel credentials instead of TLS + ADC (tests: `grpc.credentials.createInsecure()` to loopback). */
  sslCreds?: ChannelCredentials;
  /** A ready client instead of one made from the options above. */
  client?: MetricServiceClient;
}

export class CloudMonitoringSource implements MetricSource {
  readonly kind = 'cloud-monitoring' as const;
  readonly name: string;
  readonly #o: Required<
    Omit<CloudMonitoringSourceOptions, 'name' | 'client' | 'apiEndpoint' | 'port' | 'sslCreds' | 'versionField'>
  > & { versionField: string | null };
  readonly #client: MetricServiceClient;
  readonly #ownsClient: boolean;

  constructor(o: CloudMonitoringSourceOptions) {
    this.name = o.name ?? 'cloud-monitoring';
    if (!o.project || /[/\s]/.test(o.project))
      throw new RangeError(`${this.name}: ${JSON.stringify(o.project)} is not a project id or number`);
    const stepSeconds = o.stepSeconds ?? 60;
    if (!Number.isInteger(stepSeconds) || stepSeconds < 1)
      throw new RangeError(`${this.name}: stepSeconds must be a whole number of seconds`);
    this.#o = {
      project: o.project,
      requestFilter: o.requestFilter ?? LB_REQUEST_COUNT_FILTER,
      classField: o.classField ?? 'metric.label.response_code_class',
      versionField: o.versionField ?? null,
      latencyFilter: o.latencyFilter ?? null,
      stepSeconds,
      minSamples: o.minSamples ?? 1,
      timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    };
    this.#ownsClient = !o.client;
    this.#client =
      o.client ??
      new MetricServiceClient({
        projectId: o.project, // known: ADC need not go looking for one
        ...(o.apiEndpoint ? { apiEndpoint: o.apiEndpoint } : {}),
        ...(o.port ? { port: o.port } : {}),
        ...(o.sslCreds ? { sslCreds: o.sslCreds } : {}),
      });
  }

  async measure(window: MetricWindow, signal?: AbortSignal): Promise<Measurement> {
    checkWindow(window);
    const o = this.#o;
    const from = window.from.getTime();
    const to = window.to.getTime();
    const windowSeconds = Math.max(1, Math.round((to - from) / 1000));
    const interval = { startTime: ts(from), endTime: ts(to) };
    const groupBy = [o.classField, ...(o.versionField ? [o.versionField] : [])];
    const countsRequest: protos.google.monitoring.v3.IListTimeSeriesRequest = {
      name: `projects/${o.project}`,
      filter: o.requestFilter,
      interval,
      view: 'FULL',
      aggregation: {
        alignmentPeriod: { seconds: o.stepSeconds },
        perSeriesAligner: 'ALIGN_DELTA',
        crossSeriesReducer: 'REDUCE_SUM',
        groupByFields: groupBy,
      },
    };
    const latencyRequest: protos.google.monitoring.v3.IListTimeSeriesRequest | null =
      o.latencyFilter === null
        ? null
        : {
            name: `projects/${o.project}`,
            filter: o.latencyFilter,
            interval,
            view: 'FULL',
            aggregation: {
              alignmentPeriod: { seconds: windowSeconds },
              perSeriesAligner: 'ALIGN_DELTA',
              crossSeriesReducer: 'REDUCE_PERCENTILE_99',
              groupByFields: o.versionField ? [o.versionField] : [],
            },
          };
    const queries = [o.requestFilter, ...(o.latencyFilter ? [o.latencyFilter] : [])];
    const ev = {
      queries,
      window: evidenceWindow(window, o.stepSeconds),
      samples: 0,
      points: {} as Record<string, Array<[number, number]>>,
    };
    // gax ends each call (retries of UNAVAILABLE included) at timeoutMs with its own, telling error;
    // this backstop, a little later, ends a call that gax did not.
    const deadline = AbortSignal.timeout(o.timeoutMs + BACKSTOP_MS);
    let counts: TimeSeries[];
    let latency: TimeSeries[] | null;
    try {
      [counts, latency] = await Promise.all([
        this.#list(countsRequest, deadline, signal),
        latencyRequest ? this.#list(latencyRequest, deadline, signal) : null,
      ]);
    } catch (err) {
      if (abortedByCaller(signal)) throw signal!.reason;
      const e = err as { filter?: string };
      const filter = e.filter ?? o.requestFilter;
      // gax repeats every retried error after " : Previous errors": the last one says enough.
      const why =
        deadline.aborted && (err as Error)?.name === 'TimeoutError'
          ? `no answer within ${(o.timeoutMs + BACKSTOP_MS) / 1000} s`
          : describeError(err)
              .replace(/ : Previous errors .*$/s, '')
              .replace(/\s+/g, ' ')
              .slice(0, 500);
      return failed(
        'error',
        this.name,
        window,
        `${this.name}: listTimeSeries on projects/${o.project} failed for filter ${quote(filter)}: ${why}`,
        ev,
      );
    }
    const classOf = (s: TimeSeries) => labelOf(s, o.classField);
    let total = 0;
    let n5xx = 0;
    let n4xx = 0;
    let samples = 0;
    const byVersion: Record<string, Counts> = {};
    const perStep = { requests: new Map<number, number>(), failed: new Map<number, number>() };
    for (const s of counts) {
      const cls = classOf(s) ?? '';
      const version = o.versionField ? labelOf(s, o.versionField) : undefined;
      for (const p of s.points ?? []) {
        const v = numberOf(p.value);
        if (v === null) continue;
        samples++;
        const t = millis(p.interval?.endTime) ?? to;
        total += v;
        perStep.requests.set(t, (perStep.requests.get(t) ?? 0) + v);
        const slot =
          version === undefined ? undefined : (byVersion[version] ??= { total: 0, failed: 0, failed4xx: 0, p99Ms: null });
        if (slot) slot.total += v;
        if (cls.startsWith('5')) {
          n5xx += v;
          perStep.failed.set(t, (perStep.failed.get(t) ?? 0) + v);
          if (slot) slot.failed += v;
        }
        if (cls.startsWith('4')) {
          n4xx += v;
          if (slot) slot.failed4xx! += v;
        }
      }
    }
    let p99Ms: number | null = null;
    for (const s of latency ?? []) {
      const values = (s.points ?? []).map((p) => numberOf(p.value)).filter((x): x is number => x !== null);
      samples += values.length;
      if (!values.length) continue;
      const worst = Math.max(...values);
      const version = o.versionField ? labelOf(s, o.versionField) : undefined;
      if (version !== undefined) (byVersion[version] ??= { total: 0, failed: 0, failed4xx: 0, p99Ms: null }).p99Ms = worst;
      else p99Ms = p99Ms === null ? worst : Math.max(p99Ms, worst);
    }
    ev.samples = samples;
    ev.points = { requests: boundPoints([...perStep.requests], 'sum'), failed: boundPoints([...perStep.failed], 'sum') };
    if (p99Ms !== null) ev.points.p99_ms = [[to, p99Ms]];
    const countSamples = counts.reduce((n, s) => n + (s.points?.length ?? 0), 0);
    if (counts.length === 0 || countSamples === 0) {
      return failed(
        'no-data',
        this.name,
        window,
        `${this.name}: filter ${quote(o.requestFilter)} matched no time series on projects/${o.project} between ${window.from.toISOString()} and ${window.to.toISOString()}`,
        ev,
      );
    }
    if (countSamples < o.minSamples) {
      return failed(
        'no-data',
        this.name,
        window,
        `${this.name}: filter ${quote(o.requestFilter)} returned ${countSamples} points, fewer than the ${o.minSamples} needed`,
        ev,
      );
    }
    if (counts.some((s) => classOf(s) === undefined)) {
      return failed(
        'error',
        this.name,
        window,
        `${this.name}: filter ${quote(o.requestFilter)} returned series without the label ${o.classField}: cannot tell failures from successes (check classField)`,
        ev,
      );
    }
    if (o.versionField && p99Ms === null && latency?.length) {
      // Latency per version only: the overall p99 is the worst version's (an upper bound).
      const per = Object.values(byVersion)
        .map((c) => c.p99Ms)
        .filter((x): x is number => x !== null);
      if (per.length) p99Ms = Math.max(...per);
    }
    return {
      status: 'ok',
      source: this.name,
      window,
      total,
      failed: n5xx,
      failed4xx: n4xx,
      p99Ms,
      byVersion,
      evidence: { source: this.name, ...ev },
      message: `${this.name}: ${total} requests, ${n5xx} 5xx, ${n4xx} 4xx, p99 ${p99Ms === null ? 'unknown' : `${p99Ms} ms`} over ${windowSeconds} s (${countSamples} points of ${quote(o.requestFilter, 120)})`,
    };
  }

  /** Every page of one listTimeSeries call; rejects with the filter attached. */
  #list(
    request: protos.google.monitoring.v3.IListTimeSeriesRequest,
    deadline: AbortSignal,
    signal?: AbortSignal,
  ): Promise<TimeSeries[]> {
    return new Promise((resolve, reject) => {
      const out: TimeSeries[] = [];
      const stop = AbortSignal.any([deadline, ...(signal ? [signal] : [])]);
      const fail = (err: unknown) => {
        stop.removeEventListener('abort', onAbort);
        reject(Object.assign(err instanceof Error ? err : new Error(String(err)), { filter: request.filter }));
      };
      const onAbort = () => {
        stream.destroy();
        fail(stop.reason);
      };
      if (stop.aborted) {
        reject(stop.reason);
        return;
      }
      const stream = this.#client.listTimeSeriesStream(request, {
        timeout: this.#o.timeoutMs,
        autoPaginate: false,
        signal: stop,
      });
      stop.addEventListener('abort', onAbort, { once: true });
      stream.on('data', (s: TimeSeries) => out.push(s));
      stream.on('error', fail);
      stream.on('end', () => {
        stop.removeEventListener('abort', onAbort);
        resolve(out);
      });
    });
  }

  async close(): Promise<void> {
    if (this.#ownsClient) await this.#client.close();
  }
}

function ts(ms: number): protos.google.protobuf.ITimestamp {
  return { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) };
}

function millis(t: protos.google.protobuf.ITimestamp | null | undefined): number | null {
  if (!t) return null;
  return Number(t.seconds ?? 0) * 1000 + Math.round(Number(t.nanos ?? 0) / 1e6);
}

/** `metric.label.x` or `resource.label.x` of a series (group-by keeps the grouped labels). */
function labelOf(s: TimeSeries, field: string): string | undefined {
  const m = /^(metric|resource)\.labels?\.(.+)$/.exec(field);
  if (!m) return undefined;
  const labels = m[1] === 'metric' ? s.metric?.labels : s.resource?.labels;
  const v = labels?.[m[2]];
  return v === undefined || v === null ? undefined : String(v);
}

/** An int64 (a string in the gRPC client), double, or a distribution's mean: null when the point has no number. */
function numberOf(v: protos.google.monitoring.v3.ITypedValue | null | undefined): number | null {
  if (!v) return null;
  const which = (v as { value?: string }).value;
  const pick =
    which === 'int64Value'
      ? v.int64Value
      : which === 'doubleValue'
        ? v.doubleValue
        : v.int64Value !== undefined && v.int64Value !== null
          ? v.int64Value
          : v.doubleValue;
  if (pick === undefined || pick === null) return null;
  const n = Number(pick);
  return Number.isFinite(n) ? n : null;
}

/** `--source cloud-monitoring`: the load balancer's request counts and latency from Cloud Monitoring. */
export const cloudMonitoringProvider: MetricSourceProvider = {
  name: 'cloud-monitoring',
  flags: [
    GCP_PROJECT_FLAG,
    { flag: '--cloud-monitoring-endpoint <host:port>', description: 'the API endpoint (default monitoring.googleapis.com:443)' },
  ],
  create(v) {
    if (!v.project) throw new SourceUsageError('--source cloud-monitoring needs --project');
    const endpoint = v['cloud-monitoring-endpoint'];
    const [host, port] = (endpoint ?? '').split(':');
    return new CloudMonitoringSource({ project: v.project, ...(endpoint ? { apiEndpoint: host, port: Number(port) } : {}) });
  },
};
