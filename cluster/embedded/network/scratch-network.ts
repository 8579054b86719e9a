import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PodNetwork, type PodNetworkOptions } from './pod-network.ts';
import { mustRun } from './run-command.ts';

const LOCK_DIR = '/run/verdict-scratch-networks';
/** Third octets we hand out (even, each with its odd neighbour as the rest of a /23 blackhole). */
const FIRST_OCTET = 200;
const LAST_OCTET = 250;

/**
 * A PodNetwork of its own for a test or benchmark, so that it can run next to a real embedded
 * cluster (10.244.0.0/24 on verdict0) and next to other scratch networks: bridge `vdt<N>`,
 * subnet 10.244.N.0/24, blackhole 10.244.N.0/23, namespaces `vdt<N>-…`, a temporary state
 * directory. N is claimed with a lock file holding our pid (a stale claim of a dead pid is taken
 * over). Dispose it to destroy the network and release the claim.
 */
export interface ScratchNetwork extends AsyncDisposable {
  network: PodNetwork;
  options: Required<PodNetworkOptions>;
  dispose(): Promise<void>;
}

export async function createScratchNetwork(): Promise<ScratchNetwork> {
  const routes = await mustRun(['ip', 'route', 'show']);
  mkdirSync(LOCK_DIR, { recursive: true });
  for (let n = FIRST_OCTET; n <= LAST_OCTET; n += 2) {
    if (routes.includes(`10.244.${n}.`) || routes.includes(`10.244.${n + 1}.`)) continue;
    const lock = join(LOCK_DIR, String(n));
    if (!claim(lock)) continue;
    const stateDir = await mkdtemp(join(tmpdir(), `verdict-net-${n}-`));
    const options: Required<PodNetworkOptions> = {
      stateDir,
      bridge: `vdt${n}`,
      subnet: `10.244.${n}.0/24`,
      gateway: `10.244.${n}.1`,
      clusterCidr: `10.244.${n}.0/23`,
      namespacePrefix: `vdt${n}-`,
    };
    let network: PodNetwork;
    try {
      network = await PodNetwork.create(options);
    } catch (err) {
      await PodNetwork.cleanupLeftovers(options).catch(() => {});
      await rm(stateDir, { recursive: true, force: true });
      release(lock);
      throw err;
    }
    let disposed = false;
    const dispose = async () => {
      if (disposed) return;
      disposed = true;
      try {
        await network.destroy();
      } finally {
        // Also whatever a crashed test left with our prefix.
        await PodNetwork.cleanupLeftovers(options).catch(() => {});
        await rm(stateDir, { recursive: true, force: true });
        release(lock);
      }
    };
    return { network, options, dispose, [Symbol.asyncDispose]: dispose };
  }
  throw new Error(`no free scratch pod subnet in 10.244.${FIRST_OCTET}-${LAST_OCTET + 1}.0; stale locks in ${LOCK_DIR}?`);
}

function claim(lock: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return true;
    } catch {
      let owner = NaN;
      try {
        owner = Number(readFileSync(lock, 'utf8'));
      } catch {
        continue;
      }
      if (owner > 0 && isAlive(owner)) return false;
      try {
        unlinkSync(lock);
      } catch {
        /* someone else took it over */
      }
    }
  }
  return false;
}

function release(lock: string): void {
  try {
    if (Number(readFileSync(lock, 'utf8')) === process.pid) unlinkSync(lock);
  } catch {
    /* already gone */
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
