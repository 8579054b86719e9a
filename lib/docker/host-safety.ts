import { readFileSync, writeFileSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/**
 * What a stock `dockerd` changes on a host and ours must not: IP forwarding (a stock engine sets
 * `net.ipv4.ip_forward=1`), the filter table's FORWARD policy (set to DROP), its own iptables
 * chains (DOCKER, DOCKER-USER, DOCKER-ISOLATION-*) and a `docker0` bridge.
 */
export interface HostNetSnapshot {
  /** `/proc/sys/net/ipv4/ip_forward`: "0" or "1". */
  ipForward: string;
  /** The filter table's FORWARD policy (`ACCEPT`, `DROP`), or null when iptables is not installed or not readable. */
  forwardPolicy: string | null;
  /** Names of iptables chains (filter and nat) that a Docker engine made, e.g. `DOCKER`. */
  dockerChains: string[];
  /** Network interfaces a Docker engine made (`docker0`, `br-<id>`). */
  dockerLinks: string[];
}

const IPTABLES = ['/usr/sbin/iptables', '/sbin/iptables', '/usr/bin/iptables'];

function iptables(args: string[]): string | null {
  for (const bin of IPTABLES) {
    try {
      return execFileSync(bin, ['-w', '5', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return null; // not root, or no such table: nothing to compare
    }
  }
  return null;
}

export function snapshotHostNet(): HostNetSnapshot {
  const ipForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  const fwd = iptables(['-t', 'filter', '-S', 'FORWARD']);
  const forwardPolicy = fwd === null ? null : (/^-P FORWARD (\S+)/m.exec(fwd)?.[1] ?? null);
  const chains = new Set<string>();
  for (const table of ['filter', 'nat']) {
    const out = iptables(['-t', table, '-S']) ?? '';
    for (const m of out.matchAll(/^-N (DOCKER\S*)/gm)) chains.add(m[1]);
  }
  const dockerLinks = readdirSync('/sys/class/net')
    .filter((n) => n === 'docker0' || /^br-[0-9a-f]{12}$/.test(n))
    .sort();
  return { ipForward, forwardPolicy, dockerChains: [...chains].sort(), dockerLinks };
}

/** Every way `after` differs from `before`, in words (empty when nothing changed). */
export function diffHostNet(before: HostNetSnapshot, after: HostNetSnapshot): string[] {
  const out: string[] = [];
  if (before.ipForward !== after.ipForward)
    out.push(`net.ipv4.ip_forward changed from ${before.ipForward} to ${after.ipForward}`);
  if (before.forwardPolicy !== after.forwardPolicy)
    out.push(`the FORWARD policy changed from ${before.forwardPolicy} to ${after.forwardPolicy}`);
  const newChains = after.dockerChains.filter((c) => !before.dockerChains.includes(c));
  if (newChains.length) out.push(`iptables chains appeared: ${newChains.join(', ')}`);
  const newLinks = after.dockerLinks.filter((l) => !before.dockerLinks.includes(l));
  if (newLinks.length) out.push(`interfaces appeared: ${newLinks.join(', ')}`);
  return out;
}

/**
 * Puts back what can be put back without guessing: IP forwarding and the FORWARD policy. (Chains
 * and bridges are the engine's to remove; a change there is reported, not repaired.)
 */
export function restoreHostNet(before: HostNetSnapshot): void {
  const now = snapshotHostNet();
  if (now.ipForward !== before.ipForward) {
    try {
      writeFileSync('/proc/sys/net/ipv4/ip_forward', before.ipForward + '\n');
    } catch {
      /* reported by the caller */
    }
  }
  if (before.forwardPolicy && now.forwardPolicy && now.forwardPolicy !== before.forwardPolicy)
    iptables(['-t', 'filter', '-P', 'FORWARD', before.forwardPolicy]);
}

export class HostNetChangedError extends Error {}

/** Throws (after putting forwarding and the policy back) when the host's network setup changed. */
export function assertHostNetUnchanged(before: HostNetSnapshot, when: string): void {
  const changes = diffHostNet(before, snapshotHostNet());
  if (changes.length === 0) return;
  restoreHostNet(before);
  throw new HostNetChangedError(
    `the host's network setup changed ${when}: ${changes.join('; ')} ` +
      '(forwarding and the FORWARD policy were put back; a Docker engine must run with --iptables=false --ip-forward=false --bridge=none)',
  );
}
