import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CNI_PATH, runCniPlugin } from './cni-plugin.ts';
import { cidrContainsAddress, cidrContainsCidr, parseIpv4Cidr } from './ipv4-cidr.ts';
import { mustRun, runCommand } from './run-command.ts';

export const DEFAULT_BRIDGE = 'verdict0';
export const DEFAULT_SUBNET = '10.244.0.0/24';
export const DEFAULT_GATEWAY = '10.244.0.1';
export const DEFAULT_CLUSTER_CIDR = '10.244.0.0/16';
/** Every network namespace we create is named `<prefix><12 hex chars of sha256(podKey)>`. */
export const DEFAULT_NAMESPACE_PREFIX = 'verdict-';

const NETNS_DIR = '/var/run/netns';
const NEEDS_ROOT = 'the embedded cluster needs root for network namespaces: run as root, or use --provider kind';

export interface PodNetworkOptions {
  /** The cluster's state directory; the CNI IPAM data lives in `<stateDir>/cni`. */
  stateDir: string;
  bridge?: string;
  /** Pod addresses come from here; the bridge holds `gateway` inside it. */
  subnet?: string;
  gateway?: string;
  /** Blackholed as a whole, so nothing addressed to a pod can leave the machine. */
  clusterCidr?: string;
  /** Namespace name prefix; change it only to run two networks side by side (tests). */
  namespacePrefix?: string;
}

export interface PodAttachment {
  /** Name of the network namespace (its file is /var/run/netns/<netns>). */
  netns: string;
  /** The pod's IPv4 address on eth0. */
  ip: string;
}

export interface LeftoverCleanup {
  namespaces: string[];
  processesKilled: number;
  bridgeRemoved: boolean;
  routeRemoved: boolean;
}

/**
 * The embedded cluster's pod network: one Linux bridge holding the gateway address, one network
 * namespace per pod wired to it by the real CNI `bridge` plugin with `host-local` IPAM, and a
 * blackhole route over the whole cluster CIDR. Pods reach the host on the gateway address; the
 * host reaches pods on their addresses; nothing is routed off the machine (no default route in
 * pods, no NAT, IP forwarding left as it was).
 */
export class PodNetwork {
  readonly stateDir: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly gateway: string;
  readonly clusterCidr: string;
  readonly namespacePrefix: string;
  readonly cniDataDir: string;
  readonly #attached = new Map<string, PodAttachment>();
  readonly #inFlight = new Map<string, Promise<unknown>>();

  private constructor(o: Required<PodNetworkOptions>) {
    this.stateDir = o.stateDir;
    this.bridge = o.bridge;
    this.subnet = o.subnet;
    this.gateway = o.gateway;
    this.clusterCidr = o.clusterCidr;
    this.namespacePrefix = o.namespacePrefix;
    this.cniDataDir = join(o.stateDir, 'cni');
  }

  /** Creates (or adopts) the bridge and the blackhole route. Idempotent. Needs root. */
  static async create(opts: PodNetworkOptions): Promise<PodNetwork> {
    const o: Required<PodNetworkOptions> = {
      stateDir: opts.stateDir,
      bridge: opts.bridge ?? DEFAULT_BRIDGE,
      subnet: opts.subnet ?? DEFAULT_SUBNET,
      gateway: opts.gateway ?? DEFAULT_GATEWAY,
      clusterCidr: opts.clusterCidr ?? DEFAULT_CLUSTER_CIDR,
      namespacePrefix: opts.namespacePrefix ?? DEFAULT_NAMESPACE_PREFIX,
    };
    requireRoot();
    requireTools();
    const subnet = parseIpv4Cidr(o.subnet);
    const cluster = parseIpv4Cidr(o.clusterCidr);
    if (!cidrContainsCidr(cluster, subnet) || cluster.prefixLength >= subnet.prefixLength) {
      // Equal prefixes would make the blackhole replace the bridge's own route.
      throw new Error(`pod subnet ${o.subnet} must lie strictly inside the cluster CIDR ${o.clusterCidr}`);
    }
    if (!cidrContainsAddress(subnet, o.gateway)) throw new Error(`gateway ${o.gateway} is not inside the pod subnet ${o.subnet}`);
    if (o.bridge.length > 15 || !/^[A-Za-z0-9_.-]+$/.test(o.bridge))
      throw new Error(`bad bridge name "${o.bridge}" (at most 15 characters, no spaces or slashes)`);
    if (!/^[A-Za-z0-9_.-]+$/.test(o.namespacePrefix)) throw new Error(`bad namespace prefix "${o.namespacePrefix}"`);

    // Another device already owning the subnet means a second cluster (or something else) is
    // using these addresses: two connected routes for one prefix would send pod traffic astray.
    const routes = JSON.parse(await mustRun(['ip', '-j', 'route', 'show', 'exact', subnet.text])) as {
      dev?: string;
      type?: string;
    }[];
    const foreign = routes.find((r) => r.dev !== undefined && r.dev !== o.bridge);
    if (foreign) {
      throw new Error(
        `pod subnet ${subnet.text} is already routed via ${foreign.dev}; another embedded cluster may be running (stop it with \`verdict cluster down\`) or pick another subnet`,
      );
    }

    const link = await runCommand(['ip', '-j', '-d', 'link', 'show', 'dev', o.bridge]);
    if (link.code === 0) {
      const [info] = JSON.parse(link.stdout) as { linkinfo?: { info_kind?: string } }[];
      if (info?.linkinfo?.info_kind !== 'bridge')
        throw new Error(`network device ${o.bridge} exists and is not a bridge; remove it or choose another bridge name`);
    } else {
      await mustRun(['ip', 'link', 'add', 'name', o.bridge, 'type', 'bridge']);
    }
    await mustRun(['ip', 'addr', 'replace', `${o.gateway}/${subnet.prefixLength}`, 'dev', o.bridge]);
    await mustRun(['ip', 'link', 'set', 'dev', o.bridge, 'up']);
    // The bridge's connected /24 is more specific, so pod traffic still flows; any other address in
    // the cluster CIDR matches the blackhole and is dropped instead of following the default route.
    await mustRun(['ip', 'route', 'replace', 'blackhole', cluster.text]);
    await mkdir(join(o.stateDir, 'cni'), { recursive: true });
    return new PodNetwork(o);
  }

  /** Name of the network namespace that `podKey` gets (stable for a key). */
  namespaceFor(podKey: string): string {
    return this.namespacePrefix + createHash('sha256').update(podKey).digest('hex').slice(0, 12);
  }

  /** Pods attached by this instance and not yet detached. */
  attachments(): ReadonlyMap<string, PodAttachment> {
    return this.#attached;
  }

  /**
   * Creates the pod's network namespace, brings `lo` up and runs CNI ADD (bridge + host-local) for
   * `eth0`. Calling it again for an attached key returns the same attachment.
   */
  async attach(podKey: string): Promise<PodAttachment> {
    return await this.#serialised(podKey, async () => {
      const existing = this.#attached.get(podKey);
      if (existing) return existing;
      const netns = this.namespaceFor(podKey);
      const add = await addNamespace(netns);
      if (add.code !== 0) {
        if (!/exists/i.test(add.stderr))
          throw new Error(`cannot create network namespace ${netns} for ${podKey}: ${add.stderr.trim()}`);
        // Left over from a run that died: release its address and start again.
        await this.#release(netns);
        const again = await addNamespace(netns);
        if (again.code !== 0) throw new Error(`cannot create network namespace ${netns} for ${podKey}: ${again.stderr.trim()}`);
      }
      try {
        await mustRun(['ip', '-n', netns, 'link', 'set', 'dev', 'lo', 'up']);
        const result = await runCniPlugin('ADD', this.#cniConfig(), {
          containerId: netns,
          netnsPath: `${NETNS_DIR}/${netns}`,
          ifName: 'eth0',
        });
        const address = result?.ips?.[0]?.address;
        if (!address) throw new Error(`CNI bridge ADD for ${podKey} returned no address: ${JSON.stringify(result)}`);
        const attachment: PodAttachment = { netns, ip: address.split('/')[0] };
        this.#attached.set(podKey, attachment);
        return attachment;
      } catch (err) {
        await this.#release(netns).catch(() => {});
        throw err;
      }
    });
  }

  /** CNI DEL (releases the address, removes the veth) and deletes the namespace; tolerates either being gone. */
  async detach(podKey: string): Promise<void> {
    await this.#serialised(podKey, async () => {
      const netns = this.#attached.get(podKey)?.netns ?? this.namespaceFor(podKey);
      await this.#release(netns);
      this.#attached.delete(podKey);
    });
  }

  /** See {@link commandInNamespace}. */
  commandInNamespace(netns: string, argv: string[], opts?: { uid?: number; gid?: number }): string[] {
    return commandInNamespace(netns, argv, opts);
  }

  /** Detaches every pod this instance attached, then removes the bridge, the blackhole route and the CNI data. */
  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    const settled = await Promise.allSettled([...this.#attached.keys()].map((k) => this.detach(k)));
    for (const s of settled) if (s.status === 'rejected') errors.push(s.reason);
    await deleteBridge(this.bridge).catch((e: unknown) => errors.push(e));
    await deleteBlackhole(this.clusterCidr).catch((e: unknown) => errors.push(e));
    await rm(this.cniDataDir, { recursive: true, force: true });
    if (errors.length > 0)
      throw new AggregateError(errors, `pod network teardown left ${errors.length} error(s): ${errors.map(String).join('; ')}`);
  }

  /**
   * Crash recovery (`verdict cluster down`): kills every process still inside a namespace with our
   * prefix, deletes those namespaces, our bridge and our blackhole route, and the CNI data when
   * `stateDir` is given. Safe to call when nothing is left.
   */
  static async cleanupLeftovers(
    opts: { bridge?: string; clusterCidr?: string; namespacePrefix?: string; stateDir?: string } = {},
  ): Promise<LeftoverCleanup> {
    requireRoot();
    const prefix = opts.namespacePrefix ?? DEFAULT_NAMESPACE_PREFIX;
    const listed = await mustRun(['ip', 'netns', 'list']);
    const namespaces = listed
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith(prefix));
    let processesKilled = 0;
    for (const ns of namespaces) {
      const pids = (await runCommand(['ip', 'netns', 'pids', ns])).stdout.split('\n').filter(Boolean).map(Number);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
          processesKilled++;
        } catch {
          /* already gone */
        }
      }
      await deleteNamespace(ns);
    }
    const bridgeRemoved = await deleteBridge(opts.bridge ?? DEFAULT_BRIDGE);
    const routeRemoved = await deleteBlackhole(opts.clusterCidr ?? DEFAULT_CLUSTER_CIDR);
    if (opts.stateDir) await rm(join(opts.stateDir, 'cni'), { recursive: true, force: true });
    return { namespaces, processesKilled, bridgeRemoved, routeRemoved };
  }

  #cniConfig() {
    // isGateway is deliberately false: with true, the bridge plugin writes net.ipv4.ip_forward=1
    // host-wide (seen here: 0 -> 1). The gateway address is put on the bridge by create() instead,
    // and pods reach it through their connected route. No `routes`: pods get no default route.
    return {
      cniVersion: '1.0.0',
      name: `verdict-${this.bridge}`,
      type: 'bridge',
      bridge: this.bridge,
      isGateway: false,
      ipMasq: false,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: this.subnet, gateway: this.gateway }]],
        dataDir: join(this.cniDataDir, 'ipam'),
      },
    };
  }

  async #release(netns: string): Promise<void> {
    const netnsPath = `${NETNS_DIR}/${netns}`;
    // CNI DEL must succeed even when the namespace is already gone (spec): it releases the address.
    await runCniPlugin('DEL', this.#cniConfig(), {
      containerId: netns,
      netnsPath: existsSync(netnsPath) ? netnsPath : '',
      ifName: 'eth0',
    });
    await deleteNamespace(netns);
  }

  /** One attach/detach at a time per pod key. */
  async #serialised<T>(podKey: string, work: () => Promise<T>): Promise<T> {
    const before = this.#inFlight.get(podKey) ?? Promise.resolve();
    const run = before.catch(() => {}).then(work);
    this.#inFlight.set(podKey, run);
    try {
      return await run;
    } finally {
      if (this.#inFlight.get(podKey) === run) this.#inFlight.delete(podKey);
    }
  }
}

/**
 * argv that runs `argv` inside network namespace `netns`, optionally as uid/gid with no
 * supplementary groups. `ip netns exec` and `setpriv` both exec (no fork), so the PID you spawn is
 * the final process: signals sent to it reach the application and its exit status is yours.
 * When only `uid` is given the group is 0, as Kubernetes does when runAsGroup is unset.
 */
export function commandInNamespace(netns: string, argv: string[], opts: { uid?: number; gid?: number } = {}): string[] {
  if (argv.length === 0) throw new Error('commandInNamespace: empty argv');
  const identity: string[] = [];
  if (opts.uid !== undefined || opts.gid !== undefined) {
    identity.push('setpriv');
    if (opts.uid !== undefined) identity.push('--reuid', String(opts.uid));
    identity.push('--regid', String(opts.gid ?? 0), '--clear-groups', '--');
  }
  return ['ip', 'netns', 'exec', netns, ...identity, ...argv];
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error(NEEDS_ROOT);
}

function requireTools(): void {
  for (const plugin of ['bridge', 'host-local']) {
    if (!existsSync(`${CNI_PATH}/${plugin}`)) {
      throw new Error(
        `CNI plugin ${CNI_PATH}/${plugin} not found: install Debian's containernetworking-plugins (scripts/setup-deps.sh does)`,
      );
    }
  }
}

let namespaceAdds: Promise<unknown> = Promise.resolve();

/**
 * `ip netns add`, one at a time in this process: the first one also sets up the shared
 * /run/netns mount, and concurrent first calls can race on it.
 */
function addNamespace(netns: string) {
  const run = namespaceAdds.catch(() => {}).then(() => runCommand(['ip', 'netns', 'add', netns]));
  namespaceAdds = run;
  return run;
}

async function deleteNamespace(netns: string): Promise<void> {
  const r = await runCommand(['ip', 'netns', 'delete', netns]);
  if (r.code !== 0 && !/No such file/i.test(r.stderr))
    throw new Error(`cannot delete network namespace ${netns}: ${r.stderr.trim()}`);
}

/** Returns whether a bridge was removed. */
async function deleteBridge(bridge: string): Promise<boolean> {
  const r = await runCommand(['ip', 'link', 'delete', 'dev', bridge, 'type', 'bridge']);
  if (r.code === 0) return true;
  if (/does not exist|Cannot find device/i.test(r.stderr)) return false;
  throw new Error(`cannot delete bridge ${bridge}: ${r.stderr.trim()}`);
}

/** Returns whether a blackhole route was removed. */
async function deleteBlackhole(cidr: string): Promise<boolean> {
  const r = await runCommand(['ip', 'route', 'delete', 'blackhole', cidr]);
  if (r.code === 0) return true;
  if (/No such process|not found/i.test(r.stderr)) return false;
  throw new Error(`cannot delete blackhole route ${cidr}: ${r.stderr.trim()}`);
}
