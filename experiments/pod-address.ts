/**
 * Pods at their own addresses, for what the harness asks them directly (as the kubelet does): only
 * addresses inside the pod networks the target says this machine may reach (its podReach networks,
 * which the harness created), never anything else.
 */
import { BlockList, isIP } from 'node:net';
import type { k8s } from '../lib/kube/client.ts';

/** A BlockList of `cidrs` (the allowed pod networks). */
export function networksList(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, prefix] = cidr.split('/');
    const fam = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(addr, Number(prefix ?? (fam === 'ipv6' ? 128 : 32)), fam);
  }
  return list;
}

export const inNetworks = (list: BlockList, address: string) =>
  isIP(address) !== 0 && list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');

/** The base URL (`http://<pod address>:<port of container>`) of each running pod whose address lies in `networks`. */
export function podsAtAddresses(
  pods: k8s.V1Pod[],
  container: string,
  networks: string[],
): Array<{ name: string; baseUrl: string }> {
  const allowed = networksList(networks);
  const out: Array<{ name: string; baseUrl: string }> = [];
  for (const p of pods) {
    const ip = p.status?.podIP;
    const c = p.spec?.containers.find((x) => x.name === container) ?? p.spec?.containers[0];
    const port = c?.ports?.[0]?.containerPort;
    if (!p.metadata?.name || !ip || !port || p.status?.phase !== 'Running' || !inNetworks(allowed, ip)) continue;
    out.push({ name: p.metadata.name, baseUrl: `http://${isIP(ip) === 6 ? `[${ip}]` : ip}:${port}` });
  }
  return out;
}
