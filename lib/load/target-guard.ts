/**
 * Where load may go. By default only loopback, plus networks the harness itself created (the pod CIDR
 * of an embedded cluster, passed in by the code that created it; private ranges only). Anything else
 * is "remote": it needs an explicit opt-in and then runs under a low rate cap, open model only.
 * The name is resolved once and the connection is pinned to the vetted address, so DNS cannot move
 * the load elsewhere mid-run.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

export interface TargetPolicy {
  /** Allow a target outside loopback and the harness networks (e.g. production smoke load). */
  allowRemote?: boolean;
  /** Highest arrival rate (per second) allowed against a remote target. Default 10. */
  remoteRateCap?: number;
  /** CIDRs of networks the harness created (e.g. "10.244.0.0/16"); must be private ranges. */
  harnessNetworks?: string[];
}

export const DEFAULT_REMOTE_RATE_CAP = 10;

export interface VettedTarget {
  url: URL;
  kind: 'loopback' | 'harness-network' | 'remote';
  /** The address connections go to. */
  address: string;
  /** Origin with the vetted address in place of the host name (what the connections dial). */
  origin: string;
  /** Host header to send when the URL named a host rather than an address. */
  hostHeader?: string;
  /** TLS server name when the URL named a host. */
  servername?: string;
}

export class TargetNotAllowedError extends Error {}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

const privateRanges = new BlockList();
privateRanges.addSubnet('10.0.0.0', 8, 'ipv4');
privateRanges.addSubnet('172.16.0.0', 12, 'ipv4');
privateRanges.addSubnet('192.168.0.0', 16, 'ipv4');
privateRanges.addSubnet('fc00::', 7, 'ipv6');

function family(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

/** Strips an IPv4-mapped IPv6 prefix (::ffff:127.0.0.1 → 127.0.0.1). */
function unmap(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1] : address;
}

export function isLoopback(address: string): boolean {
  const a = unmap(address);
  return isIP(a) !== 0 && loopback.check(a, family(a));
}

function harnessList(cidrs: string[] | undefined): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs ?? []) {
    const m = /^([^/]+)\/(\d+)$/.exec(cidr.trim());
    const addr = m?.[1] ?? cidr.trim();
    const fam = isIP(addr);
    if (!fam) throw new TargetNotAllowedError(`harness network "${cidr}" is not an address or CIDR`);
    const prefix = m ? Number(m[2]) : fam === 4 ? 32 : 128;
    // The range must lie inside a private range: check its first address and its prefix length.
    const minPrefix = fam === 4 ? 8 : 7;
    if (!privateRanges.check(addr, fam === 4 ? 'ipv4' : 'ipv6') || prefix < minPrefix) {
      throw new TargetNotAllowedError(
        `harness network "${cidr}" is not inside a private range (10/8, 172.16/12, 192.168/16, fc00::/7)`,
      );
    }
    list.addSubnet(addr, prefix, fam === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** Resolves and vets a target URL; throws {@link TargetNotAllowedError} with the way out in its message. */
export async function vetTarget(rawUrl: string, policy: TargetPolicy = {}): Promise<VettedTarget> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new TargetNotAllowedError(`"${rawUrl}" is not a URL (example: http://127.0.0.1:8080/health/ready)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TargetNotAllowedError(`${url.protocol} is not supported: use an http:// or https:// URL`);
  }
  if (url.username || url.password) throw new TargetNotAllowedError('put credentials in a header, not in the URL');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch (err) {
      throw new TargetNotAllowedError(`cannot resolve "${host}": ${(err as Error).message}`);
    }
  }
  const harness = harnessList(policy.harnessNetworks);
  const kinds = addresses.map((a) => {
    const u = unmap(a);
    if (isLoopback(u)) return 'loopback' as const;
    if (harness.check(u, family(u))) return 'harness-network' as const;
    return 'remote' as const;
  });
  let pick = kinds.findIndex((k) => k !== 'remote');
  if (kinds.includes('remote')) {
    if (!policy.allowRemote) {
      const remote = addresses.filter((_, i) => kinds[i] === 'remote').join(', ');
      throw new TargetNotAllowedError(
        `${url.origin} resolves to ${remote}, which is neither loopback nor a network the harness created. ` +
          `Load goes there only on purpose: pass --allow-remote (allowRemote: true); the rate is then capped at ` +
          `${policy.remoteRateCap ?? DEFAULT_REMOTE_RATE_CAP}/s.`,
      );
    }
    pick = 0;
  }
  const address = unmap(addresses[pick]);
  const kind = kinds[pick] === 'remote' || kinds.includes('remote') ? 'remote' : kinds[pick];
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const origin = `${url.protocol}//${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
  const named = !isIP(host);
  return {
    url,
    kind,
    address,
    origin,
    hostHeader: named ? url.host : undefined,
    servername: named && url.protocol === 'https:' ? host : undefined,
  };
}

/** Refuses a plan that could push a remote target harder than the cap. */
export function checkRemoteLoad(
  target: VettedTarget,
  plan: { model: 'open' | 'closed'; peakRate?: number },
  policy: TargetPolicy = {},
): void {
  if (target.kind !== 'remote') return;
  const cap = policy.remoteRateCap ?? DEFAULT_REMOTE_RATE_CAP;
  if (plan.model === 'closed') {
    throw new TargetNotAllowedError(
      `virtual-user executors have no rate bound; against a remote target use constant-arrival-rate (at most ${cap}/s)`,
    );
  }
  if ((plan.peakRate ?? Infinity) > cap) {
    throw new TargetNotAllowedError(
      `${target.url.origin} is remote: its rate is capped at ${cap}/s, and this plan peaks at ${plan.peakRate}/s`,
    );
  }
}
