import type { V1EndpointSlice, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { CAUSE_RULES, CAUSES, classifyFailure, FAILURE_CAUSES, type FailedRequest, type KindAnswers } from './causes.ts';
import { Timeline } from './timeline.ts';

// A pod's life as the watches would deliver it: created → ready → terminating → gone, with its
// endpoint in the Service's EndpointSlice added, marked terminating and removed. Times in ms.
const pod = (name: string, o: { ready?: boolean; terminating?: boolean; version?: string } = {}): V1Pod => ({
  metadata: {
    name,
    labels: { 'app.kubernetes.io/version': o.version ?? 'v1' },
    deletionTimestamp: o.terminating ? new Date(0) : undefined,
    resourceVersion: String(Math.random()),
  },
  spec: { nodeName: 'node-1', containers: [] },
  status: { podIP: `10.244.0.${name.length}`, conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False' }] },
});
const slice = (eps: Array<{ pod: string; ready: boolean; terminating?: boolean }>): V1EndpointSlice => ({
  addressType: 'IPv4',
  endpoints: eps.map((e) => ({
    addresses: ['10.244.0.9'],
    targetRef: { kind: 'Pod', name: e.pod },
    conditions: { ready: e.ready, serving: e.ready || !!e.terminating, terminating: e.terminating },
  })),
});

/**
 * Pod "a" (v1) lives from 0, is ready at 100; SIGTERM path: terminating at 1000, endpoint marked
 * terminating (not ready) at 1200, process gone at 1500. Pod "b" is ready all along.
 * Pod "c" is created at 2000 and becomes ready at 2600.
 */
function story(): Timeline {
  const t = new Timeline(() => 0);
  const add = (p: V1Pod, at: number, type: 'ADDED' | 'MODIFIED' | 'DELETED' = 'MODIFIED') =>
    t.ingestPod({ type, object: p, previous: undefined, fromRelist: false }, at);
  add(pod('a'), 0, 'ADDED');
  add(pod('b', { ready: true }), 0, 'ADDED');
  t.ingestSlices([slice([{ pod: 'b', ready: true }])], 0);
  add(pod('a', { ready: true }), 100);
  t.ingestSlices(
    [
      slice([
        { pod: 'a', ready: true },
        { pod: 'b', ready: true },
      ]),
    ],
    150,
  );
  add(pod('a', { ready: false, terminating: true }), 1000);
  t.ingestSlices(
    [
      slice([
        { pod: 'a', ready: false, terminating: true },
        { pod: 'b', ready: true },
      ]),
    ],
    1200,
  );
  add(pod('a', { terminating: true }), 1500, 'DELETED');
  t.ingestSlices([slice([{ pod: 'b', ready: true }])], 1600);
  add(pod('c', { version: 'v2' }), 2000, 'ADDED');
  add(pod('c', { ready: true, version: 'v2' }), 2600);
  return t;
}

const req = (o: Partial<FailedRequest>): FailedRequest => ({
  scheduledAt: 0,
  startedAt: null,
  endedAt: null,
  status: 0,
  error: 'conn_reset',
  pod: null,
  ...o,
});

describe('failure causes', () => {
  const timeline = story();
  const ctx = { timeline, endpointLagMs: 1000 };

  it('reset-during-drain: in flight when its pod began terminating', () => {
    const c = classifyFailure(req({ scheduledAt: 900, startedAt: 950, endedAt: 1010, pod: 'a' }), ctx);
    expect(c.cause).toBe('reset-during-drain');
    expect(c.reason).toMatch(/in flight when pod a began terminating/);
  });

  it('endpoint-not-yet-removed: sent to a terminating pod still listed ready, or withdrawn less than the lag before', () => {
    expect(classifyFailure(req({ scheduledAt: 1100, startedAt: 1100, endedAt: 1101, pod: 'a' }), ctx).cause).toBe(
      'endpoint-not-yet-removed',
    );
    const lagged = classifyFailure(
      req({ scheduledAt: 1700, startedAt: 1700, endedAt: 1701, pod: 'a', error: 'conn_refused' }),
      ctx,
    );
    expect(lagged.cause).toBe('endpoint-not-yet-removed');
    expect(lagged.reason).toMatch(/withdrawn only 0\.50 s before \(data-plane lag 1\.00 s\)/);
    // Without a modelled lag the same request is a terminating-pod failure.
    expect(
      classifyFailure(req({ scheduledAt: 1700, startedAt: 1700, endedAt: 1701, pod: 'a' }), { timeline, endpointLagMs: 0 }).cause,
    ).toBe('terminating-pod');
  });

  it('terminating-pod: reached a terminating pod after its endpoint was withdrawn, or a 5xx while shutting down', () => {
    expect(
      classifyFailure(req({ scheduledAt: 1300, startedAt: 1300, endedAt: 1301, pod: 'a' }), { timeline, endpointLagMs: 0 }).cause,
    ).toBe('terminating-pod');
    const fivexx = classifyFailure(
      req({ scheduledAt: 1100, startedAt: 1100, endedAt: 1110, pod: 'a', status: 503, error: 'http_5xx' }),
      ctx,
    );
    expect(fivexx.cause).toBe('terminating-pod');
  });

  it('infers the pod of a request without one when exactly one pod was terminating, and says so', () => {
    const c = classifyFailure(req({ scheduledAt: 1100, startedAt: 1100, endedAt: 1101 }), ctx);
    expect(c.cause).toBe('endpoint-not-yet-removed');
    expect(c.inferredPod).toBe('a');
    expect(c.reason).toMatch(/the only pod terminating then; the request names none/);
    // Nothing terminating: unknown, not a guess.
    const none = classifyFailure(req({ scheduledAt: 5000, startedAt: 5000, endedAt: 5001 }), ctx);
    expect(none.cause).toBe('unknown');
    expect(none.inferredPod).toBeUndefined();
  });

  it('pod-not-ready: the pod was not Ready (starting)', () => {
    expect(
      classifyFailure(req({ scheduledAt: 2100, startedAt: 2100, endedAt: 2101, pod: 'c', status: 500, error: 'http_5xx' }), ctx)
        .cause,
    ).toBe('pod-not-ready');
    expect(classifyFailure(req({ scheduledAt: 2100, startedAt: 2100, endedAt: 2101, pod: 'c' }), ctx).cause).toBe(
      'pod-not-ready',
    );
  });

  it('application-5xx: a 5xx from a Ready pod that was not terminating', () => {
    const c = classifyFailure(
      req({ scheduledAt: 3000, startedAt: 3000, endedAt: 3005, pod: 'c', status: 500, error: 'http_5xx' }),
      ctx,
    );
    expect(c.cause).toBe('application-5xx');
    expect(c.reason).toBe('HTTP 500 from pod c, which was Ready and not terminating');
  });

  it('timeout: the client gave up on a pod that was serving; on a pod already terminating the pod rules explain it', () => {
    expect(
      classifyFailure(req({ scheduledAt: 3000, startedAt: 3000, endedAt: 13_000, pod: 'c', error: 'timeout' }), ctx).cause,
    ).toBe('timeout');
    expect(classifyFailure(req({ scheduledAt: 3000, startedAt: 3000, endedAt: 13_000, error: 'timeout' }), ctx).cause).toBe(
      'timeout',
    );
    // Sent to pod a after it began terminating, while its endpoint was still routed: the connection hung.
    expect(
      classifyFailure(req({ scheduledAt: 1100, startedAt: 1100, endedAt: 11_100, pod: 'a', error: 'timeout' }), ctx).cause,
    ).toBe('endpoint-not-yet-removed');
    // In flight when it began terminating, never answered.
    expect(
      classifyFailure(req({ scheduledAt: 900, startedAt: 950, endedAt: 11_000, pod: 'a', error: 'timeout' }), ctx).cause,
    ).toBe('reset-during-drain');
  });

  it('dependency-outage: ended during an outage or within the recovery allowance, before any other rule', () => {
    const outages = [{ dependency: 'redis', from: 900, to: 1200 }];
    const during = classifyFailure(req({ scheduledAt: 900, startedAt: 950, endedAt: 1010, pod: 'a', error: 'timeout' }), {
      ...ctx,
      outages,
    });
    expect(during.cause).toBe('dependency-outage');
    const after = classifyFailure(
      req({ scheduledAt: 1290, startedAt: 1290, endedAt: 1300, pod: 'b', status: 503, error: 'http_5xx' }),
      { ...ctx, outages, recoveryAllowanceMs: 500 },
    );
    expect(after.cause).toBe('dependency-outage');
    expect(after.reason).toMatch(/0\.10 s after it came back/);
    // After the allowance the failure is the service's own.
    expect(
      classifyFailure(req({ scheduledAt: 1800, startedAt: 1800, endedAt: 1801, pod: 'b', status: 503, error: 'http_5xx' }), {
        ...ctx,
        outages,
        recoveryAllowanceMs: 500,
      }).cause,
    ).toBe('application-5xx');
  });

  it('application-4xx: a 4xx the app answered that no version comparison explains; unknown: a 5xx no pod claims', () => {
    const c = classifyFailure(
      req({ scheduledAt: 3000, startedAt: 3000, endedAt: 3001, pod: 'b', status: 409, error: 'http_4xx', version: 'v1' }),
      ctx,
    );
    expect(c.cause).toBe('application-4xx');
    expect(c.reason).toBe('HTTP 409 from pod b (v1)');
    const lb = classifyFailure(req({ scheduledAt: 3000, startedAt: 3000, endedAt: 3001, status: 502, error: 'http_5xx' }), ctx);
    expect(lb.cause).toBe('unknown');
    expect(lb.reason).toMatch(/a proxy or load balancer answered/);
    // A 4xx nobody claims (no pod, no version) stays unknown too: it may not be the app's.
    expect(
      classifyFailure(req({ scheduledAt: 3000, startedAt: 3000, endedAt: 3001, status: 403, error: 'http_4xx' }), ctx).cause,
    ).toBe('unknown');
  });
});

/** What each version answered per kind, from a table: kind → version → [accepted, refused]. */
function answers(t: Record<string, Record<string, [number, number]>>): KindAnswers {
  return {
    accepted: (k, v) => t[k]?.[v]?.[0] ?? 0,
    refused: (k, v) => t[k]?.[v]?.[1] ?? 0,
    acceptedElsewhere(k, v) {
      const other = Object.entries(t[k] ?? {}).find(([x, [a]]) => x !== v && a > 0);
      return other
        ? { count: other[1][0], example: { version: other[0], pod: 'b', at: Date.UTC(2026, 2, 3, 14, 0, 1, 250), status: 200 } }
        : null;
    },
  };
}

describe('causes that compare versions within a run', () => {
  const timeline = story();
  const HB = 'POST /api/v1/licenses/heartbeat {session_id:string}';
  // c (v2) is Ready from 2600; b (v1) Ready all along.
  const hb = (o: Partial<FailedRequest>) =>
    req({ scheduledAt: 3000, startedAt: 3000, endedAt: 3002, pod: 'c', version: 'v2', kind: HB, error: 'http_4xx', ...o });

  it('contract-break: a kind v1 accepted and v2 refused with a 4xx every time, with an example of each side', () => {
    const ctx = { timeline, answers: answers({ [HB]: { v1: [5120, 0], v2: [0, 4239] } }) };
    const c = classifyFailure(hb({ status: 400 }), ctx);
    expect(c.cause).toBe('contract-break');
    expect(c.reason).toBe(
      `${HB}: v1 accepted 5,120 (e.g. HTTP 200 from v1, pod b at 14:00:01.250 UTC), v2 accepted none and refused 4,239 with a 4xx (this one HTTP 400 from v2, pod c)`,
    );
    expect(c.contrast).toEqual({ version: 'v1', pod: 'b', at: Date.UTC(2026, 2, 3, 14, 0, 1, 250), status: 200 });
    // Before the version rules existed this was unknown; now only evidence from both sides makes it a contract break:
    // v2 also accepted some of the kind (a 4xx that depends on the request, not its kind): an application 4xx.
    const mixed = { timeline, answers: answers({ [HB]: { v1: [5120, 0], v2: [10, 30] } }) };
    expect(classifyFailure(hb({ status: 400 }), mixed).cause).toBe('application-4xx');
    // Nobody else accepted it: nothing to compare against.
    const alone = { timeline, answers: answers({ [HB]: { v2: [0, 30] } }) };
    expect(classifyFailure(hb({ status: 400 }), alone).cause).toBe('application-4xx');
    // Without the request's kind (an old ledger) there is no comparison.
    expect(classifyFailure(hb({ status: 400, kind: null }), ctx).cause).toBe('application-4xx');
  });

  it('state-not-shared: a session one version created that another answers as unknown (404/410), naming both', () => {
    const ctx = { timeline, answers: answers({ [HB]: { v1: [5000, 0], v2: [800, 4201] } }), resourceName: 'session' };
    const c = classifyFailure(hb({ status: 404, createdBy: { version: 'v1', pod: 'b' } }), ctx);
    expect(c.cause).toBe('state-not-shared');
    expect(c.reason).toBe(
      'a session created by v1, pod b is unknown to v2, pod c: HTTP 404; v2 accepted 800 requests of this kind (for sessions it knows)',
    );
    expect(classifyFailure(hb({ status: 410, createdBy: { version: 'v1', pod: 'b' } }), ctx).cause).toBe('state-not-shared');
    // The same version on another pod (state kept in the pod's memory) is the same failure.
    expect(classifyFailure(hb({ status: 404, createdBy: { version: 'v2', pod: 'a' } }), ctx).cause).toBe('state-not-shared');
    // The pod that created it does not know it either: not a sharing problem.
    expect(classifyFailure(hb({ status: 404, createdBy: { version: 'v2', pod: 'c' } }), ctx).cause).toBe('application-4xx');
    // A status the app does not call "unknown resource", or an untagged request: not this rule.
    expect(
      classifyFailure(hb({ status: 404, createdBy: { version: 'v1', pod: 'b' } }), { ...ctx, unknownResourceStatuses: [410] })
        .cause,
    ).toBe('application-4xx');
    expect(classifyFailure(hb({ status: 404 }), ctx).cause).toBe('application-4xx');
  });

  it('a version that refuses the whole kind broke the contract, whoever created the session', () => {
    // v2 removed the route: 404 for everything, also for its own sessions; v1 accepted it.
    const ctx = { timeline, answers: answers({ [HB]: { v1: [5000, 0], v2: [0, 3000] } }) };
    expect(classifyFailure(hb({ status: 404, createdBy: { version: 'v1', pod: 'b' } }), ctx).cause).toBe('contract-break');
    expect(classifyFailure(hb({ status: 404, createdBy: { version: 'v2', pod: 'c' } }), ctx).cause).toBe('contract-break');
  });

  it('the version rules judge 4xx answers only, and after the no-answer rules and a dependency outage', () => {
    const ctx = { timeline, answers: answers({ [HB]: { v1: [5000, 0], v2: [0, 3000] } }) };
    expect(classifyFailure(hb({ status: 500, error: 'http_5xx' }), ctx).cause).toBe('application-5xx');
    const outages = [{ dependency: 'postgres', from: 2900, to: 3100 }];
    expect(classifyFailure(hb({ status: 400 }), { ...ctx, outages }).cause).toBe('dependency-outage');
  });
});

describe('endpoints-frozen (the control plane away)', () => {
  // Pod "r" is ready at 0; the control plane goes away at 10 000 and is back at 40 000; meanwhile its
  // container exits and restarts, which the watches learn only on re-list at 41 000 (restart count 1).
  function frozen(): Timeline {
    const t = new Timeline(() => 0);
    const r = (restarts: number): V1Pod => {
      const p = pod('r', { ready: true });
      p.status!.containerStatuses = [{ name: 'c', image: 'i', imageID: '', ready: true, restartCount: restarts }];
      return p;
    };
    t.ingestPod({ type: 'ADDED', object: r(0), previous: undefined, fromRelist: false }, 0);
    t.ingestSlices([slice([{ pod: 'r', ready: true }])], 0);
    t.ingestPod({ type: 'MODIFIED', object: r(1), previous: undefined, fromRelist: true }, 41_000);
    return t;
  }
  const away = [{ from: 10_000, to: 40_000, staleForMs: 5000 }];

  it('a request without an answer while the control plane was away, or before the data plane caught up, is endpoints-frozen', () => {
    const ctx = { timeline: frozen(), controlPlaneAway: away };
    const during = classifyFailure(req({ startedAt: 20_000, endedAt: 20_001, error: 'conn_refused', pod: 'r' }), ctx);
    expect(during.cause).toBe('endpoints-frozen');
    expect(during.reason).toMatch(/10\.00 s into the control-plane outage: the endpoints could not change/);
    expect(during.reason).toMatch(/restarted once meanwhile/);
    const after = classifyFailure(req({ startedAt: 43_000, endedAt: 43_001, error: 'conn_reset', pod: 'r' }), ctx);
    expect(after.cause).toBe('endpoints-frozen');
    expect(after.reason).toMatch(
      /3\.00 s after the control plane was back, before the data plane had caught up \(allowed 5\.00 s\)/,
    );
  });

  it('a 5xx from a pod whose containers restarted meanwhile (a process starting again, routed while not ready) is endpoints-frozen too', () => {
    const ctx = { timeline: frozen(), controlPlaneAway: away };
    const c = classifyFailure(req({ startedAt: 20_000, status: 503, error: 'http_5xx', pod: 'r' }), ctx);
    expect(c.cause).toBe('endpoints-frozen');
    expect(c.reason).toMatch(/which answered HTTP 503 .*restarted once meanwhile/);
  });

  it('not: a 5xx from a pod that did not restart, 4xx, timeouts, and anything outside the window (their own rules apply)', () => {
    const ctx = { timeline: frozen(), controlPlaneAway: away };
    const steady = new Timeline(() => 0);
    steady.ingestPod({ type: 'ADDED', object: pod('s', { ready: true }), previous: undefined, fromRelist: false }, 0);
    expect(
      classifyFailure(req({ startedAt: 20_000, status: 500, error: 'http_5xx', pod: 's' }), {
        timeline: steady,
        controlPlaneAway: away,
      }).cause,
    ).toBe('application-5xx');
    expect(classifyFailure(req({ startedAt: 20_000, status: 404, error: 'http_4xx', pod: 'r' }), ctx).cause).not.toBe(
      'endpoints-frozen',
    );
    expect(classifyFailure(req({ startedAt: 20_000, error: 'timeout', pod: 'r' }), ctx).cause).toBe('timeout');
    expect(classifyFailure(req({ startedAt: 46_000, error: 'conn_refused', pod: 'r' }), ctx).cause).not.toBe('endpoints-frozen');
    expect(classifyFailure(req({ startedAt: 9000, error: 'conn_refused', pod: 'r' }), ctx).cause).not.toBe('endpoints-frozen');
    expect(classifyFailure(req({ startedAt: 20_000, error: 'conn_refused', pod: 'r' }), { timeline: frozen() }).cause).not.toBe(
      'endpoints-frozen',
    );
  });
});

describe('a pod deleted with grace 0 (kubectl delete --force)', () => {
  it('terminates at the instant it is gone: what was in flight on it was cut by its termination, what came later went to a gone pod', () => {
    const t = new Timeline(() => 0);
    const f = pod('f', { ready: true });
    t.ingestPod({ type: 'ADDED', object: f, previous: undefined, fromRelist: false }, 0);
    t.ingestSlices([slice([{ pod: 'f', ready: true }])], 0);
    const deleted: V1Pod = {
      ...f,
      metadata: { ...f.metadata, deletionTimestamp: new Date(5000), deletionGracePeriodSeconds: 0 },
    };
    t.ingestPod({ type: 'DELETED', object: deleted, previous: f, fromRelist: false }, 5000);
    expect(t.terminatingSince('f')).toBe(5000);
    expect(t.podAt('f', 5000)?.exists).toBe(false);
    expect(t.events.filter((e) => e.object === 'pod/f').map((e) => [e.change, e.detail])).toEqual([
      ['created', 'version v1, node node-1'],
      ['ready', null],
      ['terminating', 'deleted at once (grace 0 s)'],
      ['gone', null],
    ]);
    const ctx = { timeline: t, endpointLagMs: 1000 };
    expect(classifyFailure(req({ startedAt: 4990, endedAt: 5010, pod: 'f' }), ctx).cause).toBe('reset-during-drain');
    expect(classifyFailure(req({ startedAt: 5300, endedAt: 5301, error: 'conn_refused', pod: 'f' }), ctx).cause).toBe(
      'endpoint-not-yet-removed',
    );
  });
});

describe('token-refused-during-rotation (issue 21: key-rotation)', () => {
  const timeline = story();
  const rotation = { what: 'signing key k1 → k2', from: 3000, to: 9000 };
  const hb = (o: Partial<FailedRequest>) =>
    req({ scheduledAt: o.startedAt ?? 5000, pod: 'b', version: 'v1', error: 'http_4xx', ...o });
  it('a 401 from a pod while the harness rotated the signing key: a valid token refused', () => {
    const c = classifyFailure(hb({ status: 401, startedAt: 5000, endedAt: 5010 }), { timeline, credentialRotations: [rotation] });
    expect(c.cause).toBe('token-refused-during-rotation');
    expect(c.reason).toMatch(
      /^HTTP 401 from pod b \(v1\) 2\.01 s into the rotation \(signing key k1 → k2\): a token the harness issued valid/,
    );
  });

  it('not a 401, or a 401 outside the rotation (or without one), is not this cause', () => {
    const ctx = { timeline, credentialRotations: [rotation] };
    expect(classifyFailure(hb({ status: 403, startedAt: 5000, endedAt: 5010 }), ctx).cause).toBe('application-4xx');
    expect(classifyFailure(hb({ status: 401, startedAt: 9500, endedAt: 9510 }), ctx).cause).toBe('application-4xx');
    expect(classifyFailure(hb({ status: 401, startedAt: 5000, endedAt: 5010 }), { timeline }).cause).toBe('application-4xx');
    // Still under way at the end of the run: open-ended.
    const open = { timeline, credentialRotations: [{ ...rotation, to: null }] };
    expect(classifyFailure(hb({ status: 401, startedAt: 50_000, endedAt: 50_010 }), open).cause).toBe(
      'token-refused-during-rotation',
    );
  });
});

describe('the cause registry', () => {
  it('lists every cause once, in rule order, each with a description and a #rrggbb colour; unknown last', () => {
    expect(CAUSES.map((c) => c.name)).toEqual(FAILURE_CAUSES);
    expect(new Set(FAILURE_CAUSES).size).toBe(FAILURE_CAUSES.length);
    expect(CAUSES.map((c) => c.rule)).toEqual(FAILURE_CAUSES.map((_, i) => i + 1));
    expect(FAILURE_CAUSES.at(-1)).toBe('unknown');
    for (const c of CAUSES) {
      expect(c.colour).toMatch(/^#[0-9a-f]{6}$/);
      expect(c.description.length).toBeGreaterThan(20);
    }
    expect(new Set(CAUSES.map((c) => c.colour)).size).toBe(CAUSES.length);
    expect(CAUSE_RULES).toHaveLength(CAUSES.length);
  });
});

describe('timeline store', () => {
  it('answers point-in-time questions and records capacity at every change', () => {
    const t = story();
    expect(t.podAt('a', 50)?.ready).toBe(false);
    expect(t.podAt('a', 500)?.ready).toBe(true);
    expect(t.podAt('a', 1000)?.terminating).toBe(true);
    expect(t.podAt('a', 1600)?.exists).toBe(false);
    expect(t.terminatingSince('a')).toBe(1000);
    expect(t.endpointAt('a', 1100)).toMatchObject({ listed: true, ready: true });
    expect(t.endpointGoneSince('a', 1300)).toBe(1200);
    expect(t.terminatingAt(1100)).toEqual(['a']);
    // Capacity: 2 ready before the termination, 1 after it, 2 again once c is ready.
    expect(t.capacityBetween(500, 900)).toMatchObject({ minReady: 2, maxActive: 2 });
    expect(t.capacityBetween(500, 3000)).toMatchObject({ minReady: 1, maxActive: 2, maxTotal: 2 });
    expect(t.noneReadyMs(0, 3000)).toBe(0); // b was Ready all along
    const lone = new Timeline(() => 0);
    const flip = (ready: boolean, at: number) =>
      lone.ingestPod({ type: 'MODIFIED', object: pod('x', { ready }), previous: undefined, fromRelist: false }, at);
    flip(true, 0);
    flip(false, 1000);
    flip(true, 1600);
    expect(lone.noneReadyMs(0, 3000)).toBe(600);
    expect(lone.noneReadyMs(1200, 1400)).toBe(200);
    expect(t.events.filter((e) => e.object === 'pod/a').map((e) => e.change)).toEqual([
      'created',
      'ready',
      'unready',
      'terminating',
      'gone',
    ]);
    expect(t.events.filter((e) => e.object === 'endpoint/a').map((e) => e.change)).toEqual([
      'endpoint-added',
      'endpoint-terminating',
      'endpoint-removed',
    ]);
    expect(t.before('a', 1250).map((e) => e.change)).toEqual(['unready', 'terminating', 'endpoint-terminating']);
  });
});
