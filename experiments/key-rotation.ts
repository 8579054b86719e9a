/**
 * key-rotation: the token signing key rotated under load, the way a careful operator does it (the
 * seed's "key deletion or rotation"). The harness is the identity provider: it serves the key set
 * (JWKS) itself on the address pods reach it at (lib/services/jwks-server.ts), deploys the release
 * under test pointed at it (the app profile's `signedTokens.env`) and mints the load's tokens, which
 * a fleet of clients renews as real clients do (lib/load/credentials.ts). Then:
 *
 *   1. publish the new key beside the old one;
 *   2. roll it out: wait until every pod has fetched the set with both keys (seen by the server),
 *      at most the release's own key-set refresh interval (read from its manifests) plus a margin;
 *   3. switch the issuer to the new key (each client moves to it when it renews);
 *   4. retire the old key once the last token signed with it has expired (plus a margin), and wait
 *      until every pod has fetched the set without it: then a fresh token of the old key must be
 *      refused by every pod.
 *
 * No request whose token was valid when issued may be refused: a 401 during the rotation is the
 * cause `token-refused-during-rotation`. Afterwards the release is deployed back as it was, without
 * the harness's key set.
 */
import { randomBytes } from 'node:crypto';
import { renderRelease, type ReleaseSpec } from '../lib/kube/deploy.ts';
import { activePods } from '../lib/kube/disrupt.ts';
import { findKind, type KubeObject } from '../lib/kube/render.ts';
import type { CredentialRotation } from '../lib/evidence/causes.ts';
import { TokenClients } from '../lib/load/credentials.ts';
import { newIssuerKey, startJwksServer, type IssuerKey, type JwksServer } from '../lib/services/jwks-server.ts';
import type { Gate } from '../reports/gates.ts';
import type { SignedTokens } from './app-profile.ts';
import { defineExperiment, type RunContext } from './experiment.ts';
import { faultsOf, loadGates, pause } from './common.ts';
import { podsAtAddresses } from './pod-address.ts';

/** Past the refresh interval, how much longer a pod may take to fetch the set: a token to trigger it and the fetch itself. */
export const PROPAGATION_MARGIN_MS = 10_000;
/** Past the old key's last token's expiry, before the key is retired: clock skew between issuer and verifiers. */
export const RETIRE_MARGIN_MS = 5_000;

export interface Propagation {
  /** What was published, e.g. `k1 + k2`. */
  keys: string;
  /** Epoch ms it was published; how long the harness waited for every pod; the bound it would wait. */
  at: number;
  waitedMs: number;
  boundMs: number;
  /** Pods running when it was published, and those that fetched it afterwards. */
  pods: string[];
  fetched: string[];
}

export interface KeyRotationData {
  /** Why the rehearsal could not run (the app verifies no signed tokens), or null. */
  unsupported: string | null;
  keys: { old: string; next: string };
  /** The release's key-set refresh interval and where it came from. */
  refresh: { ms: number; source: string };
  lifetimeMs: number;
  /** Publishing both keys (before the switch) and retiring the old one. */
  published: Propagation | null;
  switchedAt: number | null;
  retired: (Propagation & { oldTokenAnswers: Array<{ pod: string; status: number | string }> }) | null;
  /** Requests per key id the load sent. */
  sent: Record<string, number>;
  rotation: CredentialRotation | null;
}

/** The rehearsal's own timings: the lifetime of the tokens the harness issues. */
export interface KeyRotationOptions {
  tokenLifetimeMs: number;
}

export const DEFAULT_TOKEN_LIFETIME_MS = 90_000;

export function keyRotationExperiment(o: KeyRotationOptions = { tokenLifetimeMs: DEFAULT_TOKEN_LIFETIME_MS }) {
  return defineExperiment<KeyRotationData>()({
    name: 'key-rotation',
    description:
      'rotates the token signing key under load as a careful operator does (publish the new key beside the old, roll it out, switch the issuer, retire the old key after the longest token lifetime): no valid token refused, the retired key refused',
    needs: ['podReach', 'images'],
    async setup() {},
    async act(ctx) {
      const signed = ctx.app.signedTokens;
      if (!signed) return unsupported(`${ctx.app.name} verifies no tokens against a key set the harness can publish`, o);
      const run = randomBytes(3).toString('hex');
      const [k1, k2] = await Promise.all([newIssuerKey(`verdict-${run}-1`), newIssuerKey(`verdict-${run}-2`)]);
      const jwks = await startJwksServer({ host: ctx.target.podReach.harnessAddress });
      ctx.defer('stop serving the key set', () => jwks.close());
      jwks.publish([k1.jwk]);
      const refresh = await deployWithKeySet(ctx, signed, jwks.url);
      ctx.say(`key set at ${jwks.url}; the release refetches it every ${refresh.source}`);
      const keys = new Map([k1, k2].map((k) => [k.kid, k]));
      const tokens = new TokenClients({
        lifetimeMs: o.tokenLifetimeMs,
        key: k1.kid,
        mint: (kid, seconds) => signed.mint(keys.get(kid)!, seconds),
      });
      await tokens.start();
      ctx.defer('stop issuing tokens', async () => tokens.stop());
      const data: KeyRotationData = {
        ...unsupported(null, o),
        keys: { old: k1.kid, next: k2.kid },
        refresh,
        sent: {},
      };
      const { warmupMs, settleMs } = ctx.config.experiments;
      const bound = refresh.ms + PROPAGATION_MARGIN_MS;
      const load = await ctx.load('key-rotation', {
        rate: ctx.options.rate,
        maxMs: warmupMs + 2 * bound + o.tokenLifetimeMs + RETIRE_MARGIN_MS + settleMs + 120_000,
        credentials: tokens,
      });
      await pause(ctx, warmupMs);
      await rotate(ctx, { jwks, k1, k2, tokens, bound, data });
      await pause(ctx, settleMs);
      await load.stop();
      data.sent = Object.fromEntries(tokens.sent);
      return data;
    },
    judge(e, { config }) {
      const d = e.data;
      if (d.unsupported) return [{ name: 'rotation made', verdict: 'INCONCLUSIVE', evidence: d.unsupported }];
      const load = e.loads[0];
      return [
        stepsGate(d),
        rolledOutGate(d),
        refusedGate(e.loads[0]?.joined.failures ?? [], d),
        ...loadGates(load, config),
        retiredGate(d),
      ];
    },
  });
}

export const keyRotation = keyRotationExperiment();

const unsupported = (why: string | null, o: KeyRotationOptions): KeyRotationData => ({
  unsupported: why,
  keys: { old: '', next: '' },
  refresh: { ms: 0, source: '' },
  lifetimeMs: o.tokenLifetimeMs,
  published: null,
  switchedAt: null,
  retired: null,
  sent: {},
  rotation: null,
});

/** The container's environment as the release renders it: its ConfigMaps merged, then its env. */
export function renderedEnv(
  objects: KubeObject[],
  release: Pick<ReleaseSpec, 'deployment' | 'container'>,
): Record<string, string> {
  const d = findKind(objects, 'Deployment', release.deployment);
  const c = d?.spec?.template?.spec?.containers?.find((x) => x.name === release.container);
  if (!c) throw new Error(`the release renders no container ${release.container} in Deployment ${release.deployment}`);
  const env: Record<string, string> = {};
  for (const ef of c.envFrom ?? []) {
    const cm = ef.configMapRef && findKind(objects, 'ConfigMap', ef.configMapRef.name);
    if (cm) Object.assign(env, cm.data ?? {});
  }
  for (const e of c.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  return env;
}

/** Deploys the release under test verifying tokens against `url` (and, deferred, back as it was); its key-set refresh from its manifests. */
async function deployWithKeySet(ctx: RunContext, signed: SignedTokens, url: string): Promise<{ ms: number; source: string }> {
  const { app, options, target } = ctx;
  const plain = app.release(options.to, target.platform, faultsOf(options.faults));
  const release: ReleaseSpec = { ...plain, env: { ...plain.env, ...signed.env(url) } };
  const refresh = signed.keySetRefreshMs(renderedEnv(await renderRelease(release), release));
  ctx.defer('deploy the release back without the harness key set', async () => {
    const r = await ctx.deploy(plain);
    if (!r.ok) throw new Error(r.error);
  });
  const r = await ctx.deploy(release);
  if (!r.ok) throw new Error(`the release under test (${options.to}) did not deploy with the key set: ${r.error}`);
  return refresh;
}

/** The four steps, each on the timeline; `data` is filled as they happen. */
async function rotate(
  ctx: RunContext<'podReach'>,
  s: { jwks: JwksServer; k1: IssuerKey; k2: IssuerKey; tokens: TokenClients; bound: number; data: KeyRotationData },
): Promise<void> {
  const { jwks, k1, k2, tokens, bound, data } = s;
  const rotation: CredentialRotation = { what: `signing key ${k1.kid} → ${k2.kid}`, from: Date.now(), to: null };
  ctx.credentialRotation(rotation);
  data.rotation = rotation;
  jwks.publish([k1.jwk, k2.jwk]);
  ctx.timeline.action(`signing-key/${k2.kid}`, 'publish', `beside ${k1.kid}`);
  data.published = await waitForFetches(ctx, jwks, `${k1.kid} + ${k2.kid}`, bound, k1);
  ctx.say(
    `published ${k2.kid}: ${data.published.fetched.length} of ${data.published.pods.length} pods fetched it in ${(data.published.waitedMs / 1000).toFixed(1)} s`,
  );
  tokens.use(k2.kid);
  data.switchedAt = Date.now();
  ctx.timeline.action(`signing-key/${k2.kid}`, 'switch', `the issuer signs with ${k2.kid}`);
  // Once no client holds a token of the old key, none can still be minted with it: its last expiry is known.
  while (tokens.holds(k1.kid) && Date.now() - data.switchedAt < data.lifetimeMs) await pause(ctx, 100);
  const lastOld = tokens.lastExpiryOf(k1.kid) ?? Date.now();
  await pause(ctx, Math.max(0, lastOld + RETIRE_MARGIN_MS - Date.now()));
  jwks.publish([k2.jwk]);
  ctx.timeline.action(
    `signing-key/${k1.kid}`,
    'retire',
    `its last token expired ${((Date.now() - lastOld) / 1000).toFixed(1)} s before`,
  );
  const retired = await waitForFetches(ctx, jwks, k2.kid, bound, k2);
  data.retired = { ...retired, oldTokenAnswers: await askWithOldKey(ctx, k1) };
  rotation.to = Date.now();
}

/**
 * Waits until every running pod has fetched the key set since now (at most `boundMs`). A release may
 * refresh its set only when it verifies a token (the license API does), as every pod does under
 * production traffic; the test load's pooled connections can leave a pod without any. So a pod that
 * has not fetched yet is asked, at its own address, with a valid token of `current` once a second:
 * the wait measures the release's refresh under traffic, not where the load's connections landed.
 */
async function waitForFetches(
  ctx: RunContext<'podReach'>,
  jwks: JwksServer,
  keys: string,
  boundMs: number,
  current: IssuerKey,
): Promise<Propagation> {
  const at = Date.now();
  const { workload } = ctx.app;
  const signed = ctx.app.signedTokens!;
  const running = await activePods(ctx.target.kubeConfig, workload.namespace, workload.selector);
  const pods = running.flatMap((p) =>
    p.metadata?.name && p.status?.podIP ? [{ name: p.metadata.name, ip: p.status.podIP }] : [],
  );
  const reach = new Map(
    podsAtAddresses(running, workload.container, ctx.target.podReach.networks).map((p) => [p.name, p.baseUrl]),
  );
  const fetchedBy = () => pods.filter((p) => jwks.fetches.some((f) => f.at >= at && f.from === p.ip)).map((p) => p.name);
  let askedAt = -Infinity;
  while (fetchedBy().length < pods.length && Date.now() - at < boundMs) {
    if (Date.now() - askedAt >= 1000) {
      askedAt = Date.now();
      const fetched = new Set(fetchedBy());
      const token = await signed.mint(current, 60);
      const unfetched = pods.flatMap((p) => (!fetched.has(p.name) && reach.has(p.name) ? [reach.get(p.name)!] : []));
      await Promise.all(unfetched.map((url) => signed.ask(url, token).catch(() => 0)));
    }
    await pause(ctx, 250);
  }
  return { keys, at, waitedMs: Date.now() - at, boundMs, pods: pods.map((p) => p.name), fetched: fetchedBy() };
}

/** A fresh token of the retired key, sent to each pod at its address: what each answered. */
async function askWithOldKey(
  ctx: RunContext<'podReach'>,
  old: IssuerKey,
): Promise<Array<{ pod: string; status: number | string }>> {
  const signed = ctx.app.signedTokens!;
  const { workload } = ctx.app;
  const pods = podsAtAddresses(
    await activePods(ctx.target.kubeConfig, workload.namespace, workload.selector),
    workload.container,
    ctx.target.podReach.networks,
  );
  return Promise.all(
    pods.map(async (p) => {
      const token = await signed.mint(old, 60);
      const status = await signed.ask(p.baseUrl, token).catch((err: Error) => err.message);
      return { pod: p.name, status };
    }),
  );
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Every step was made, with its time. */
function stepsGate(d: KeyRotationData): Gate {
  const name = 'rotation steps';
  if (!d.published || d.switchedAt === null || !d.retired || !d.rotation)
    return { name, verdict: 'INCONCLUSIVE', evidence: 'the rotation did not get through its four steps' };
  const t0 = d.rotation.from;
  return {
    name,
    verdict: 'PASS',
    observed: {
      rolled_out_ms: d.published.waitedMs,
      switched_ms: d.switchedAt - t0,
      retired_ms: d.retired.at - t0,
      token_lifetime_ms: d.lifetimeMs,
    },
    evidence:
      `published ${d.keys.next} beside ${d.keys.old} at 0 s, rolled out to every pod in ${secs(d.published.waitedMs)} ` +
      `(bound: the release's key-set refresh ${d.refresh.source} + ${secs(PROPAGATION_MARGIN_MS)}), switched the issuer at ` +
      `${secs(d.switchedAt - t0)}, retired ${d.keys.old} at ${secs(d.retired.at - t0)} (its last token, of ${secs(d.lifetimeMs)}, ` +
      `had expired ${secs(RETIRE_MARGIN_MS)} before)`,
  };
}

/** Before the switch, every pod held the new key (the careful operator's "rolled out"). */
function rolledOutGate(d: KeyRotationData): Gate {
  const name = 'new key on every pod before the switch';
  const p = d.published;
  if (!p) return { name, verdict: 'INCONCLUSIVE', evidence: 'the new key was never published' };
  const missing = p.pods.filter((x) => !p.fetched.includes(x));
  return missing.length
    ? {
        name,
        verdict: 'FAIL',
        observed: { pods: p.pods.length, fetched: p.fetched.length },
        evidence: `pods ${missing.join(', ')} had not fetched the key set with ${d.keys.next} ${secs(p.waitedMs)} after it was published, past their own refresh interval (${d.refresh.source}) and a margin of ${secs(PROPAGATION_MARGIN_MS)}`,
      }
    : {
        name,
        verdict: 'PASS',
        observed: { pods: p.pods.length, fetched: p.fetched.length, waited_ms: p.waitedMs },
        evidence: `all ${p.pods.length} pods fetched the set with ${d.keys.next} within ${secs(p.waitedMs)} of its publication`,
      };
}

/** No request whose token was valid was refused; tokens of both keys were really sent. */
function refusedGate(
  failures: Array<{ cause: string; status: number; at: number; pod: string | null; reason: string }>,
  d: KeyRotationData,
): Gate {
  const name = 'no valid token refused';
  const refused = failures.filter((f) => f.cause === 'token-refused-during-rotation');
  const observed = {
    refused: refused.length,
    [`sent_${d.keys.old}`]: d.sent[d.keys.old] ?? 0,
    [`sent_${d.keys.next}`]: d.sent[d.keys.next] ?? 0,
  };
  if (refused.length) {
    const f = refused[0];
    const when =
      d.switchedAt !== null
        ? `${secs(f.at - d.switchedAt)} ${f.at >= d.switchedAt ? 'after' : 'before'} the switch to ${d.keys.next}`
        : '';
    return {
      name,
      verdict: 'FAIL',
      observed,
      evidence: `tokens were refused during the rotation: ${refused.length} requests got 401 with a token the harness had issued valid (first ${when}, pod ${f.pod ?? 'unknown'}): the release does not hold both keys of the set`,
    };
  }
  if (!d.sent[d.keys.next] || !d.sent[d.keys.old])
    return {
      name,
      verdict: 'INCONCLUSIVE',
      observed,
      evidence: `the load did not send tokens of both keys (${d.keys.old}: ${d.sent[d.keys.old] ?? 0}, ${d.keys.next}: ${d.sent[d.keys.next] ?? 0})`,
    };
  return {
    name,
    verdict: 'PASS',
    observed,
    evidence: `no request was refused: ${d.sent[d.keys.old]} carried tokens of ${d.keys.old}, ${d.sent[d.keys.next]} of ${d.keys.next}, both in use after the switch until each client renewed`,
  };
}

/** Once every pod fetched the set without it, the retired key's tokens are refused everywhere. */
function retiredGate(d: KeyRotationData): Gate {
  const name = 'retired key refused';
  const r = d.retired;
  if (!r || r.oldTokenAnswers.length === 0)
    return { name, verdict: 'INCONCLUSIVE', evidence: 'no pod was asked with a token of the retired key' };
  const accepted = r.oldTokenAnswers.filter((a) => a.status !== 401);
  const stale = r.pods.filter((x) => !r.fetched.includes(x));
  return accepted.length
    ? {
        name,
        verdict: 'FAIL',
        observed: { asked: r.oldTokenAnswers.length, not_refused: accepted.length },
        evidence:
          `a fresh token of the retired key ${d.keys.old}, ${secs(r.waitedMs)} after its retirement, was not refused by ` +
          accepted.map((a) => `${a.pod} (${typeof a.status === 'number' ? `HTTP ${a.status}` : a.status})`).join(', ') +
          (stale.length ? `; ${stale.join(', ')} had not fetched the set since (refresh ${d.refresh.source})` : ''),
      }
    : {
        name,
        verdict: 'PASS',
        observed: { asked: r.oldTokenAnswers.length, waited_ms: r.waitedMs },
        evidence: `every pod (${r.oldTokenAnswers.length}) refused a fresh token of ${d.keys.old} with 401 once it had fetched the set without it (${secs(r.waitedMs)} after the retirement)`,
      };
}
