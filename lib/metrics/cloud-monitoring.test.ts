import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricGates } from '../../reports/metric-gates.ts';
import { CloudMonitoringSource, LB_LATENCY_FILTER, LB_REQUEST_COUNT_FILTER } from './cloud-monitoring.ts';

// Cloud Monitoring cannot run here: the real @google-cloud/monitoring client talks gRPC, over an
// insecure channel to loopback, to a server of ours that implements
// google.monitoring.v3.MetricService/ListTimeSeries from the proto definitions the library ships.

const PROJECT = 'verdict-test-1';
const require = createRequire(import.meta.url);
const monitoringMain = require.resolve('@google-cloud/monitoring');
const protoDirs = [
  join(dirname(monitoringMain), '../protos'),
  join(dirname(createRequire(monitoringMain).resolve('google-gax')), '../protos'),
];

type Mode = 'ok' | 'deny' | 'empty' | 'silent' | 'no-class-label';
let mode: Mode = 'ok';
let server: grpc.Server;
let port: number;
const requests: any[] = [];
const savedEnv = {
  GCE_METADATA_HOST: process.env.GCE_METADATA_HOST,
  METADATA_SERVER_DETECTION: process.env.METADATA_SERVER_DETECTION,
};

const window = { from: new Date('2026-03-03T14:00:00Z'), to: new Date('2026-03-03T14:05:00Z') };

/** Five one-minute points per response class: 200: 1000/min, 500: 3/min (the second page holds the 500s). */
function countSeries(cls: string, perMinute: number) {
  const points = [];
  for (let i = 4; i >= 0; i--) {
    const end = window.from.getTime() / 1000 + (i + 1) * 60;
    points.push({
      interval: { startTime: { seconds: end - 60 }, endTime: { seconds: end } },
      value: { int64Value: String(perMinute) },
    });
  }
  return {
    metric: {
      type: 'loadbalancing.googleapis.com/https/request_count',
      labels: mode === 'no-class-label' ? {} : { response_code_class: cls },
    },
    resource: { type: 'https_lb_rule', labels: { url_map_name: 'license-api' } },
    metricKind: 'DELTA',
    valueType: 'INT64',
    points,
  };
}

beforeAll(async () => {
  process.env.GCE_METADATA_HOST = '127.0.0.1:9';
  process.env.METADATA_SERVER_DETECTION = 'none';
  const def = protoLoader.loadSync('google/monitoring/v3/metric_service.proto', {
    includeDirs: protoDirs,
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  server = new grpc.Server();
  server.addService(pkg.google.monitoring.v3.MetricService.service, {
    ListTimeSeries: (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
      const r = call.request;
      requests.push(r);
      if (mode === 'silent') return; // never answers
      if (mode === 'deny')
        return callback({
          code: grpc.status.PERMISSION_DENIED,
          details: `Permission monitoring.timeSeries.list denied on resource ${r.name}`,
        });
      if (r.name !== `projects/${PROJECT}` || !/metric\.type="/.test(r.filter) || !r.interval?.endTime) {
        return callback({ code: grpc.status.INVALID_ARGUMENT, details: `bad request: ${JSON.stringify(r).slice(0, 200)}` });
      }
      if (mode === 'empty') return callback(null, { timeSeries: [], nextPageToken: '' });
      if (r.filter.includes('total_latencies')) {
        return callback(null, {
          timeSeries: [
            {
              metric: { type: 'loadbalancing.googleapis.com/https/total_latencies', labels: {} },
              resource: { type: 'https_lb_rule', labels: {} },
              metricKind: 'DELTA',
              valueType: 'DOUBLE',
              points: [
                { interval: { startTime: r.interval.startTime, endTime: r.interval.endTime }, value: { doubleValue: 87.5 } },
              ],
            },
          ],
          nextPageToken: '',
        });
      }
      if (r.pageToken === 'page-2') return callback(null, { timeSeries: [countSeries('500', 3)], nextPageToken: '' });
      callback(null, { timeSeries: [countSeries('200', 1000), countSeries('400', 2)], nextPageToken: 'page-2' });
    },
  });
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
});

afterAll(async () => {
  server?.forceShutdown();
  for (const [k, v] of Object.entries(savedEnv))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

const source = (o: { timeoutMs?: number } = {}) =>
  new CloudMonitoringSource({
    project: PROJECT,
    apiEndpoint: '127.0.0.1',
    port,
    sslCreds: grpc.credentials.createInsecure(),
    requestFilter: `${LB_REQUEST_COUNT_FILTER} AND resource.label.url_map_name="license-api"`,
    latencyFilter: LB_LATENCY_FILTER,
    timeoutMs: o.timeoutMs ?? 10_000,
  });

async function measureWith(m: Mode, o: { timeoutMs?: number } = {}) {
  mode = m;
  requests.length = 0;
  const s = source(o);
  try {
    return await s.measure(window);
  } finally {
    await s.close();
  }
}

describe('cloud-monitoring source: the real client against a local ListTimeSeries', () => {
  it('counts by response class over every page, p99 from the latency distribution, the request as Cloud Monitoring wants it', async () => {
    const m = await measureWith('ok');
    if (m.status !== 'ok') throw new Error(m.message);
    expect(m).toMatchObject({ source: 'cloud-monitoring', total: 5025, failed: 15, failed4xx: 10, p99Ms: 87.5, byVersion: {} });
    expect(m.evidence.queries).toEqual([
      `${LB_REQUEST_COUNT_FILTER} AND resource.label.url_map_name="license-api"`,
      LB_LATENCY_FILTER,
    ]);
    expect(m.evidence.samples).toBe(16);
    expect(m.evidence.points.failed).toEqual([1, 2, 3, 4, 5].map((i) => [window.from.getTime() + i * 60_000, 3]));
    const counts = requests.filter((r) => r.filter.includes('request_count'));
    expect(counts.map((r) => r.pageToken)).toEqual(['', 'page-2']);
    expect(counts[0]).toMatchObject({
      name: `projects/${PROJECT}`,
      view: 'FULL',
      interval: {
        startTime: { seconds: String(window.from.getTime() / 1000) },
        endTime: { seconds: String(window.to.getTime() / 1000) },
      },
      aggregation: {
        alignmentPeriod: { seconds: '60' },
        perSeriesAligner: 'ALIGN_DELTA',
        crossSeriesReducer: 'REDUCE_SUM',
        groupByFields: ['metric.label.response_code_class'],
      },
    });
    expect(requests.find((r) => r.filter.includes('total_latencies')).aggregation).toMatchObject({
      alignmentPeriod: { seconds: '300' },
      crossSeriesReducer: 'REDUCE_PERCENTILE_99',
    });
    expect(metricGates([m], { maxErrorRate: 0.01, minRequests: 1000, p99Ms: 250 }).verdict).toBe('PASS');
    expect(metricGates([m], { maxErrorRate: 0.001, minRequests: 1000, p99Ms: 250 }).verdict).toBe('FAIL');
  });

  it('the server answering an error: error naming the source and the filter, never PASS', async () => {
    const m = await measureWith('deny');
    expect(m.status).toBe('error');
    expect(m.message).toMatch(
      /^cloud-monitoring: listTimeSeries on projects\/verdict-test-1 failed for filter `metric\.type="loadbalancing\.googleapis\.com\/https\/(request_count|total_latencies)".*`: 7 PERMISSION_DENIED: Permission monitoring\.timeSeries\.list denied/,
    );
    expect(metricGates([m], { maxErrorRate: 0.01, minRequests: 1000 }).verdict).toBe('ERROR');
  });

  it('no series for the filter: no-data, never PASS', async () => {
    const m = await measureWith('empty');
    expect(m).toMatchObject({
      status: 'no-data',
      message: expect.stringMatching(
        /^cloud-monitoring: filter `metric\.type=.*request_count.*` matched no time series on projects\/verdict-test-1/,
      ),
    });
    expect(metricGates([m], { maxErrorRate: 0.01, minRequests: 1000 }).verdict).toBe('INCONCLUSIVE');
  });

  it('series without the response class label: error (failures cannot be told from successes)', async () => {
    const m = await measureWith('no-class-label');
    expect(m).toMatchObject({
      status: 'error',
      message: expect.stringMatching(/without the label metric\.label\.response_code_class/),
    });
  });

  it('a server that never answers: error after the timeout', async () => {
    const m = await measureWith('silent', { timeoutMs: 1000 });
    expect(m.status).toBe('error');
    expect(m.message).toMatch(
      /^cloud-monitoring: listTimeSeries on projects\/verdict-test-1 failed for filter `.+`: 4 DEADLINE_EXCEEDED: Deadline exceeded/,
    );
  });

  it('the caller aborting cancels the call and rejects instead of judging', async () => {
    mode = 'silent';
    const s = source();
    try {
      await expect(s.measure(window, AbortSignal.timeout(200))).rejects.toMatchObject({ name: 'TimeoutError' });
    } finally {
      await s.close();
    }
  });

  it('unreachable: error, never PASS', async () => {
    const s = new CloudMonitoringSource({
      project: PROJECT,
      apiEndpoint: '127.0.0.1',
      port: 9,
      sslCreds: grpc.credentials.createInsecure(),
      timeoutMs: 1500,
    });
    try {
      const m = await s.measure(window);
      expect(m.status).toBe('error');
      expect(m.message).toMatch(
        /^cloud-monitoring: listTimeSeries on projects\/verdict-test-1 failed for filter `metric\.type="loadbalancing\.googleapis\.com\/https\/request_count".*`: Total timeout .* exceeded \d+ milliseconds retrying error Error: 14 UNAVAILABLE: No connection established\. Last error: Error: connect ECONNREFUSED 127\.0\.0\.1:9\./,
      );
      expect(m.message.length).toBeLessThan(800);
    } finally {
      await s.close();
    }
  });
});
