import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, link, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, get, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidrContainsAddress, parseIpv4Cidr } from './ipv4-cidr.ts';
import { commandInNamespace, PodNetwork } from './pod-network.ts';
import { runCommand } from './run-command.ts';
import { createScratchNetwork, type ScratchNetwork } from './scratch-network.ts';

// Real namespaces, bridge and CNI plugins: this suite needs root. Without it, beforeAll fails with
// PodNetwork's own message ("... needs root for network namespaces ...") instead of skipping.

let scratch: ScratchNetwork | undefined;
const children = new Set<ChildProcess>();
const servers = new Set<Server>();
const ipForwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();

beforeAll(async () => {
  scratch = await createScratchNetwork();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of servers) s.close();
  await scratch?.dispose();
});

function net(): PodNetwork {
  if (!scratch) throw new Error('scratch network was not created (see beforeAll)');
  return scratch.network;
}

/** Spawns argv; resolves with exit code/signal and output. */
function spawnOwned(argv: string[]) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, exit, output: () => out };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

describe('PodNetwork (real namespaces, as root)', () => {
  it('refuses to run without root, naming the fix', async () => {
    // A non-root child importing this module: the check itself, not a mock of it. node lives
    // under /root (mode 0700) here, so uid 65534 runs a hard link of it from a temporary dir.
    const dir = await mkdtemp(join(tmpdir(), 'verdict-nonroot-'));
    try {
      await chmod(dir, 0o755);
      const node = join(dir, 'node');
      await link(process.execPath, node).catch(() => copyFile(process.execPath, node));
      const code = `import(${JSON.stringify(new URL('./pod-network.ts', import.meta.url).href)}).then(m => m.PodNetwork.create({ stateDir: '/tmp/x' })).then(() => console.log('CREATED'), e => console.log(e.message))`;
      const r = await runCommand(['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--', node, '-e', code]);
      expect(r.stdout, r.stderr).toContain(
        'the embedded cluster needs root for network namespaces: run as root, or use --provider kind',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gives two pods distinct addresses in the subnet, with lo up and no default route', async () => {
    const a = await net().attach('test/pod-a');
    const b = await net().attach('test/pod-b');
    const subnet = parseIpv4Cidr(net().subnet);
    expect(a.ip).not.toBe(b.ip);
    expect(cidrContainsAddress(subnet, a.ip)).toBe(true);
    expect(cidrContainsAddress(subnet, b.ip)).toBe(true);
    expect([a.ip, b.ip]).not.toContain(net().gateway);
    expect(a.netns.startsWith(net().namespacePrefix)).toBe(true);
    expect(await net().attach('test/pod-a')).toEqual(a); // idempotent

    const links = JSON.parse((await runCommand(['ip', '-n', a.netns, '-j', 'addr', 'show'])).stdout) as {
      ifname: string;
      operstate: string;
      flags: string[];
      addr_info: { local: string }[];
    }[];
    expect(links.find((l) => l.ifname === 'lo')?.flags).toContain('UP');
    expect(links.find((l) => l.ifname === 'eth0')?.addr_info.map((x) => x.local)).toContain(a.ip);
    const routes = (await runCommand(['ip', '-n', a.netns, 'route', 'show'])).stdout;
    expect(routes).not.toMatch(/default/);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).toBe(ipForwardBefore);
  });

  it('attaches many pods concurrently with distinct addresses, and detaches them', async () => {
    const keys = Array.from({ length: 8 }, (_, i) => `test/many-${i}`);
    const attached = await Promise.all(keys.map((k) => net().attach(k)));
    expect(new Set(attached.map((a) => a.ip)).size).toBe(keys.length);
    expect(new Set(attached.map((a) => a.netns)).size).toBe(keys.length);
    await Promise.all(keys.map((k) => net().detach(k)));
    const left = (await runCommand(['ip', 'netns', 'list'])).stdout;
    for (const a of attached) expect(left).not.toContain(a.netns);
  });

  it('blackholes the rest of the cluster CIDR on the host', async () => {
    const unused = net()
      .subnet.replace(/\.0\/24$/, '.77')
      .replace(/^(\d+\.\d+\.)(\d+)/, (_, p: string, o: string) => `${p}${Number(o) + 1}`);
    expect((await runCommand(['ip', 'route', 'show', 'exact', net().clusterCidr])).stdout).toMatch(/^blackhole /);
    // The kernel refuses to route it at all (without the blackhole it would go via the default route).
    const r = await runCommand(['ip', 'route', 'get', unused]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    const inSubnet = await runCommand(['ip', 'route', 'get', net().gateway.replace(/\.1$/, '.9')]);
    expect(inSubnet.stdout).toContain(`dev ${net().bridge}`);
  });

  it('lets the host reach a server listening on a pod address', async () => {
    const { netns, ip } = await net().attach('test/pod-a');
    const server = spawnOwned(
      commandInNamespace(netns, [
        process.execPath,
        '-e',
        `require('node:http').createServer((q, s) => s.end('hello from ' + ${JSON.stringify(ip)})).listen(8080, ${JSON.stringify(ip)}, () => console.log('listening'))`,
      ]),
    );
    await waitFor(() => server.output().includes('listening'), 'pod server to listen');
    expect(await httpGet(`http://${ip}:8080/`)).toBe(`hello from ${ip}`);
    server.child.kill('SIGKILL');
    await server.exit;
  });

  it('lets a pod reach a host server bound to the gateway address (and not one bound to 127.0.0.1)', async () => {
    const { netns } = await net().attach('test/pod-b');
    const onGateway = createServer((_q, s) => s.end('host says hi'));
    const onLoopback = createServer((_q, s) => s.end('should not be reachable'));
    servers.add(onGateway).add(onLoopback);
    await new Promise<void>((r) => onGateway.listen(0, net().gateway, r));
    await new Promise<void>((r) => onLoopback.listen(0, '127.0.0.1', r));
    const gwPort = (onGateway.address() as { port: number }).port;
    const loPort = (onLoopback.address() as { port: number }).port;
    const client = (url: string) =>
      `require('node:http').get(${JSON.stringify(url)}, { timeout: 2000 }, r => { let b=''; r.on('data', c => b += c); r.on('end', () => console.log('BODY:' + b)); }).on('error', e => console.log('ERR:' + e.code)).on('timeout', function () { this.destroy(new Error('timeout')); })`;

    const ok = spawnOwned(commandInNamespace(netns, [process.execPath, '-e', client(`http://${net().gateway}:${gwPort}/`)]));
    await ok.exit;
    expect(ok.output()).toContain('BODY:host says hi');

    const refused = spawnOwned(commandInNamespace(netns, [process.execPath, '-e', client(`http://127.0.0.1:${loPort}/`)]));
    await refused.exit;
    expect(refused.output()).toContain('ERR:ECONNREFUSED'); // the pod's own loopback
    onGateway.close();
    onLoopback.close();
  });

  it('runs a command as the given user, with SIGTERM reaching it directly and its exit code coming back', async () => {
    const { netns } = await net().attach('test/pod-a');
    // sh, not node: node is installed under /root, which uid 65534 cannot enter.
    const script =
      'trap "echo got-TERM; exit 42" TERM; echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"; while :; do sleep 0.05; done';
    const p = spawnOwned(commandInNamespace(netns, ['/bin/sh', '-c', script], { uid: 65534, gid: 65534 }));
    await waitFor(() => p.output().includes('uid='), 'the script to start');
    expect(p.output()).toContain('uid=65534 gid=65534 groups=65534');
    // The spawned pid is the shell itself (ip netns exec and setpriv exec, no fork) ...
    expect(readFileSync(`/proc/${p.child.pid}/comm`, 'utf8').trim()).toBe('sh');
    // ... and lives in the pod's namespace.
    const nsPids = (await runCommand(['ip', 'netns', 'pids', netns])).stdout.split('\n').map(Number);
    expect(nsPids).toContain(p.child.pid);
    p.child.kill('SIGTERM');
    const { code, signal } = await p.exit;
    expect(p.output()).toContain('got-TERM');
    expect({ code, signal }).toEqual({ code: 42, signal: null });
  });

  it('detach releases the address; destroy leaves no namespace, bridge, route or CNI data', async () => {
    const a = await net().attach('test/pod-a');
    await net().detach('test/pod-a');
    await net().detach('test/pod-a'); // already gone: tolerated
    expect((await runCommand(['ip', 'netns', 'list'])).stdout).not.toContain(a.netns);
    const again = await net().attach('test/pod-c');
    expect(again.ip).toMatch(/^10\.244\./);

    const { bridge, clusterCidr, namespacePrefix, cniDataDir } = net();
    await net().destroy();
    expect((await runCommand(['ip', 'netns', 'list'])).stdout).not.toContain(namespacePrefix);
    expect((await runCommand(['ip', 'link', 'show'])).stdout).not.toContain(`${bridge}:`);
    const routes = (await runCommand(['ip', 'route', 'show'])).stdout;
    expect(routes).not.toContain(clusterCidr);
    expect(routes).not.toContain(net().subnet);
    expect((await runCommand(['ls', cniDataDir])).code).not.toBe(0);
    expect(net().attachments().size).toBe(0);
  });

  it('cleanupLeftovers removes namespaces (and their processes), bridge and route left by a crashed run', async () => {
    const o = scratch!.options;
    const crashed = await PodNetwork.create(o);
    const { netns } = await crashed.attach('test/crashed');
    const orphan = spawnOwned(commandInNamespace(netns, ['/bin/sh', '-c', 'echo started; while :; do sleep 0.05; done']));
    await waitFor(() => orphan.output().includes('started'), 'orphan to start');
    // "crash": forget the instance and recover with the static cleanup only.
    const result = await PodNetwork.cleanupLeftovers(o);
    expect(result).toMatchObject({ namespaces: [netns], bridgeRemoved: true, routeRemoved: true });
    expect(result.processesKilled).toBeGreaterThanOrEqual(1); // the shell (and its sleep, if caught)
    expect((await orphan.exit).signal).toBe('SIGKILL');
    expect((await runCommand(['ip', 'netns', 'list'])).stdout).not.toContain(o.namespacePrefix);
    expect((await runCommand(['ip', 'link', 'show'])).stdout).not.toContain(`${o.bridge}:`);
    expect((await runCommand(['ip', 'route', 'show'])).stdout).not.toContain(o.clusterCidr);
    expect(await PodNetwork.cleanupLeftovers(o)).toEqual({
      namespaces: [],
      processesKilled: 0,
      bridgeRemoved: false,
      routeRemoved: false,
    });
  });
});
