import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi } from '../../apps/license-api/profile.ts';
import { EXPERIMENTS } from '../../experiments/index.ts';
import { harnessConfigSchema } from '../../experiments/config.ts';
import { runExperiments, type CheckResult } from '../../experiments/runner.ts';
import { measureEndpointLag, summarize } from '../../bench/endpoint-lag.ts';
import { snapshotHostNet, diffHostNet } from '../../lib/docker/host-safety.ts';
import { docker } from '../../lib/docker/cli.ts';
import { useEngine, type DockerEngine } from '../../lib/docker/engine.ts';
import { k8s } from '../../lib/kube/client.ts';
import { deployRelease } from '../../lib/kube/deploy.ts';
import { runCommand } from '../../lib/proc/run.ts';
import { NIGHTLY, repeats } from '../../test/nightly.ts';
import {
  bridgeNameFor,
  KIND_PLATFORM,
  kindBinary,
  kindLeftovers,
  upKind,
  wrapperCalls,
  type KindCluster,
} from './kind-cluster.ts';
import { EVERY_ROLLOUT_GATE_PASSES, timedSay } from '../../experiments/testing/run-on-cluster.ts';

// kind for real (root, a Docker engine, Go): a 1 control plane + 2 workers cluster on the node image
// built here from source (the official kindest/node when the engine has it), the license API
// built with `docker build` and loaded with `kind load docker-image`, rollout-under-load judged as
// on the embedded cluster (the shipped release PASSes, a broken one FAILs for the same cause),
// endpoint propagation through the real kube-proxy measured, and everything removed at the end:
// no container, volume, network, interface, mount or firewall rule left.
const NAME = 'verdict-e2e';
const STATE = '/var/lib/verdict/test-kind';
const config = harnessConfigSchema.parse({ experiments: { rate: 200, warmupMs: 3000, settleMs: 5000 } });
// Each progress line with the seconds since the file began: image builds, `kind load` and each phase show apart.
const say = timedSay();

let cluster: KindCluster;
let engine: DockerEngine;
let before: { net: ReturnType<typeof snapshotHostNet>; iptables: string; nat: string; links: string[]; mounts: string[] };
const started = Date.now();

/** The table's rules; iptables missing or failing is an error, never an empty (and so unchanged) table. */
const iptablesS = async (table: string) => {
  const out = (await runCommand('iptables', ['-w', '5', '-t', table, '-S'])).stdout;
  if (!/^-P /m.test(out)) throw new Error(`iptables -t ${table} -S printed no policy line: cannot compare firewall rules`);
  return out;
};
/** Mounts of the engine's containers (overlay roots, shm, volumes) whose id is a kind node of this cluster. */
const nodeMounts = (ids: string[]) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => ids.some((id) => p.includes(id)));

beforeAll(async () => {
  // kind's docker calls are appended to this log in the state directory, which outlives a run: the
  // checks below read this run's calls only.
  rmSync(`${STATE}/docker-calls.log`, { force: true });
  // The engine is held for the whole file, so that its leftovers check runs after the cluster is gone.
  engine = await useEngine({ onProgress: say });
  before = {
    net: snapshotHostNet(),
    iptables: await iptablesS('filter'),
    nat: await iptablesS('nat'),
    links: readdirSync('/sys/class/net'),
    mounts: [],
  };
  const t = Date.now();
  cluster = await upKind({ name: NAME, stateDir: STATE, keepExisting: false, onProgress: say });
  say(
    `kind cluster up in ${((Date.now() - t) / 1000).toFixed(1)} s (${Object.entries(cluster.timings)
      .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
      .join(', ')})`,
  );
}, 1_800_000);

afterAll(async () => {
  const ids = cluster
    ? (await docker(engine, ['ps', '-aq', '--no-trunc', '--filter', `label=io.x-k8s.kind.cluster=${NAME}`])).stdout
        .split('\n')
        .filter(Boolean)
    : [];
  // The nodes' anonymous /var volumes (kind's `docker rm -f -v` must take them).
  const volumes = ids.length
    ? (
        await docker(engine, ['inspect', '--format', '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}', ...ids])
      ).stdout
        .split(/\s+/)
        .filter(Boolean)
    : [];
  await cluster?.close();
  try {
    // Nothing left behind: containers, the network, its bridge, mounts, firewall rules, forwarding.
    expect(await kindLeftovers(engine, NAME)).toEqual([]);
    expect(readdirSync('/sys/class/net')).not.toContain(bridgeNameFor(NAME));
    expect(nodeMounts(ids)).toEqual([]);
    expect(volumes.length).toBeGreaterThanOrEqual(ids.length);
    const left = (await docker(engine, ['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    expect(volumes.filter((v) => left.includes(v))).toEqual([]);
    expect(diffHostNet(before.net, snapshotHostNet())).toEqual([]);
    expect(await iptablesS('filter')).toBe(before.iptables);
    expect(await iptablesS('nat')).toBe(before.nat);
    say(`kind e2e wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await engine?.release();
  }
}, 600_000);

async function run(name: string, faults: string[] = []): Promise<CheckResult> {
  const [r] = await runExperiments(cluster, [EXPERIMENTS[name]], {
    app: licenseApi,
    config,
    signal: new AbortController().signal,
    say,
    options: { rate: config.experiments.rate, from: 'v1', to: 'v2', faults: faults.map((f) => licenseApi.faults[f]) },
  });
  const causes = new Map<string, { n: number; example: string }>();
  for (const f of r.evidence?.loads.flatMap((l) => l.joined.failures) ?? []) {
    const c = causes.get(f.cause) ?? { n: 0, example: `${f.status ?? ''} ${f.reason}`.trim() };
    c.n++;
    causes.set(f.cause, c);
  }
  process.stderr.write(
    `${name}${faults.length ? ` [${faults}]` : ''} on kind: ${r.verdict}${r.error ? ` ${r.error}` : ''}\n${r.gates.map((g) => `  ${g.verdict} ${g.name}: ${g.evidence}`).join('\n')}\n` +
      [...causes].map(([cause, c]) => `  ${c.n} × ${cause}: ${c.example}`).join('\n') +
      '\n',
  );
  return r;
}
const gate = (r: CheckResult, name: string) => r.gates.find((g) => g.name === name);

describe('kind cluster', () => {
  it('is up with 1 control plane and 2 workers, each with its own pod range, reached on its own network, never on loopback', async () => {
    expect(cluster.kindNodes.map((n) => n.role).sort()).toEqual(['control-plane', 'worker', 'worker']);
    expect(new Set(cluster.kindNodes.map((n) => n.podCIDR)).size).toBe(3);
    for (const n of cluster.kindNodes) expect(n.podCIDR.startsWith('10.250.')).toBe(true);
    expect(await cluster.serverVersion()).toMatch(cluster.nodeImage.source === 'official' ? /^v1\./ : /^v1\.37\.2$/);
    expect(cluster.serviceUrl(30080)).toMatch(
      new RegExp(`^http://${cluster.dockerNetwork.subnet.split('.').slice(0, 3).join('\\.')}\\.\\d+:30080$`),
    );
    say(
      `node image ${cluster.nodeImage.ref} (${cluster.nodeImage.source}); ${cluster.unprivileged ? 'without --privileged (refused here)' : 'privileged'}; network ${cluster.dockerNetwork.name} ${cluster.dockerNetwork.subnet}`,
    );
  });

  it("no docker call can pull: kind's calls went through the wrapper, every run with --pull never; a missing node image is refused, not pulled", async () => {
    const calls = await wrapperCalls(STATE);
    expect(calls.length).toBeGreaterThan(5);
    expect(calls.filter((c) => /^docker (pull|image pull)\b/.test(c))).toEqual([]);
    // kind starts each of the 3 nodes with docker run: each of those calls was logged, and pulls nothing.
    const runs = calls.filter((x) => /^docker (run|create) /.test(x));
    expect(runs.length).toBeGreaterThanOrEqual(3);
    for (const c of runs) expect(c).toMatch(/--pull never/);
    // kind looks for its node image and pulls it when absent: the wrapper refuses, kind fails.
    const kind = await kindBinary();
    const env = {
      ...process.env,
      DOCKER_HOST: engine.host,
      PATH: `${
        readdirSync(STATE)
          .filter((d) => d.startsWith('kind-path-'))
          .map((d) => `${STATE}/${d}`)[0]
      }:${process.env.PATH}`,
      VERDICT_REAL_DOCKER: (await runCommand('bash', ['-c', 'command -v docker'])).stdout.trim(),
      VERDICT_KIND_DOCKER_LOG: `${STATE}/nopull.log`,
    };
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        kind,
        ['create', 'cluster', '--name', 'verdict-nopull', '--image', 'verdict/absent-node:v0'],
        { env, timeout: 120_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }),
      ),
    );
    expect(r.code).not.toBe(0);
    expect(readFileSync(`${STATE}/nopull.log`, 'utf8')).toMatch(/^REFUSED docker pull verdict\/absent-node:v0/m);
    expect((await docker(engine, ['ps', '-aq', '--filter', 'label=io.x-k8s.kind.cluster=verdict-nopull'])).stdout.trim()).toBe(
      '',
    );
  }, 180_000);
});

describe('rollout-under-load on kind (real kubelet and kube-proxy)', () => {
  it('the shipped release PASSes every gate, as on the embedded cluster', async () => {
    const r = await run('rollout-under-load');
    expect(r.error).toBeNull();
    expect(r.gates.map((g) => [g.name, g.verdict])).toEqual(EVERY_ROLLOUT_GATE_PASSES);
    expect(r.evidence!.loads[0].joined.total).toBeGreaterThan(3000);
    // The run's images went into the nodes in one `kind load`: one `docker save` of all of them.
    const refs = [...(licenseApi.supportImages?.(KIND_PLATFORM) ?? []), licenseApi.image('v1'), licenseApi.image('v2')].map(
      (i) => i.ref,
    );
    const saves = (await wrapperCalls(STATE)).filter((c) => /^docker (image )?save /.test(c));
    expect(saves).toHaveLength(1);
    for (const ref of refs) expect(saves[0].split(' ')).toContain(ref);
  }, 900_000);

  it('pods on different nodes reach each other (bridge CNI per node, routes between nodes)', async () => {
    const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    const pods = (await core.listNamespacedPod({ namespace: 'coditect', labelSelector: 'app=license-api' })).items.filter(
      (p) => p.status?.podIP && !p.metadata?.deletionTimestamp,
    );
    const byNode = new Map(pods.map((p) => [p.spec!.nodeName!, p]));
    expect(byNode.size).toBeGreaterThanOrEqual(2);
    const [a, b] = [...byNode.values()];
    const out = await runCommand(
      'kubectl',
      [
        '--kubeconfig',
        cluster.kubeconfigPath,
        'exec',
        '-n',
        'coditect',
        a.metadata!.name!,
        '--',
        'node',
        '-e',
        `fetch('http://${b.status!.podIP}:8000/health/live').then(async (r) => console.log(r.status, r.headers.get('x-served-by')))`,
      ],
      { timeoutMs: 60_000 },
    );
    expect(out.stdout.trim()).toBe(`200 ${b.metadata!.name}`);
  }, 120_000);

  // Nightly only: make test shows the same detector FAIL this release on the embedded cluster
  // (experiments.cluster.test.ts); kind adds the real kubelet and kube-proxy, which the PASS above exercises.
  if (NIGHTLY)
    it('a release that answers 500 while ready FAILs, every failure an application-5xx from a v2 pod, as on the embedded cluster', async () => {
      const r = await run('rollout-under-load', ['errors-after-start']);
      expect(r.verdict).toBe('FAIL');
      expect(gate(r, 'no failed request')?.verdict).toBe('FAIL');
      const failures = r.evidence!.loads[0].joined.failures;
      expect(failures.length).toBeGreaterThan(10);
      for (const f of failures) {
        expect(f.status).toBe(500);
        expect(f.version).toBe('v2');
        expect(f.cause).toBe('application-5xx');
      }
    }, 900_000);
});

describe('fidelity', () => {
  it('endpoint propagation through the real kube-proxy: pod deletion → new connections stop reaching the pod (alone, and right after another change)', async () => {
    // The shipped release (preStop sleep 5 s: a deleted pod answers for 5 s more), settled: v2, which
    // the rollout above left in place (same manifests as v1, only the tag; so no rollout back to v1).
    await deployRelease(cluster.kubeConfig, licenseApi.release('v2', KIND_PLATFORM), { timeoutMs: 300_000, onProgress: say });
    const w = licenseApi.workload;
    const o = {
      namespace: w.namespace,
      selector: w.selector,
      service: w.service,
      url: cluster.serviceUrl(w.nodePort) + '/health/live',
      identityHeader: licenseApi.identityHeaders.backend,
      replicas: 3,
      say,
    };
    const quiet = await measureEndpointLag(cluster, { ...o, samples: repeats(2, 6) });
    // Another pod deleted 300 ms before: its sync was under a second ago, so kube-proxy's minSyncPeriod holds this one back.
    const burst = await measureEndpointLag(cluster, { ...o, samples: repeats(2, 4), pairGapMs: 300 });
    process.stderr.write(
      `kind endpoint propagation, alone: ${JSON.stringify(summarize(quiet))}\nkind endpoint propagation, 300 ms after another change: ${JSON.stringify(summarize(burst))}\n`,
    );
    for (const samples of [quiet, burst]) {
      const s = summarize(samples);
      // Seen by the data plane well within the pod's 5 s preStop; no probe failed. (A sample whose
      // pod got no probe after the delete has no routed time: its endpoint went before one came.)
      expect(samples.every((x) => x.sliceMs !== null)).toBe(true);
      expect(samples.filter((x) => x.routedMs !== null).length).toBeGreaterThanOrEqual(samples.length - 1);
      expect(s.routed.max!).toBeLessThan(5000);
      expect(s.failed).toBe(0);
    }
  }, 900_000);
});

describe('Ctrl-C', () => {
  /** Host processes of an image load: `kind load`, its `docker save`, the `ctr images import` it runs in each node. */
  const loadProcesses = () =>
    readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
        } catch {
          return '';
        }
      })
      .filter((cmd) => /\bload docker-image\b|\b(?:image )?save\b.*license-api:|\bimages import\b/.test(cmd));
  /** Folders under the state directory whose name begins with `prefix` (kind's image archive lives in one). */
  const foldersNamed = (prefix: string): string[] =>
    readdirSync(STATE, { recursive: true, withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name.startsWith(prefix))
      .map((d) => d.name);

  it('during `kind load` stops kind and every docker call under it, and leaves no image archive', async () => {
    expect(loadProcesses()).toEqual([]);
    // An image no node has (kind skips those the nodes hold, and re-tags one they hold under another
    // name): 64 MiB of fresh random bytes on the release's image, so that the copy takes seconds.
    const context = mkdtempSync(join(tmpdir(), 'verdict-kind-ctrl-c-'));
    writeFileSync(join(context, 'Dockerfile'), `FROM ${licenseApi.image('v1').ref}\nRUN head -c 64M /dev/urandom > /tmp/blob\n`);
    const image = { ref: 'verdict-e2e/ctrl-c:1', docker: { context } };
    const ac = new AbortController();
    let abortedAt = 0;
    let poll: NodeJS.Timeout | undefined;
    try {
      const loading = cluster.images!.load(
        [image],
        (m) => {
          say(m);
          // Once kind copies: its `docker save` (or a node's import) runs; then the Ctrl-C.
          if (m.startsWith('kind load docker-image')) {
            poll = setInterval(() => {
              const running = loadProcesses();
              if (!running.some((c) => /\bsave\b|\bimages import\b/.test(c))) return;
              clearInterval(poll);
              say(`interrupting: ${running.length} load process(es) running: ${running.map((c) => c.slice(0, 60)).join('; ')}`);
              abortedAt = Date.now();
              ac.abort(new Error('interrupted (Ctrl-C)'));
            }, 50);
          }
        },
        ac.signal,
      );
      await expect(loading).rejects.toThrow('interrupted (Ctrl-C)');
      say(`the load stopped ${Date.now() - abortedAt} ms after the interrupt`);
      expect(abortedAt).toBeGreaterThan(0);
      expect(loadProcesses()).toEqual([]);
      expect(foldersNamed('kind-load-')).toEqual([]);
    } finally {
      clearInterval(poll);
      rmSync(context, { recursive: true, force: true });
      await docker(engine, ['image', 'rm', '--force', image.ref]).catch(() => {});
    }
  }, 300_000);
});
