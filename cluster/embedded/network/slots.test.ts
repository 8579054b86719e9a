import { describe, expect, it } from 'vitest';
import { KIND_POD_SUBNET, KIND_SERVICE_SUBNET } from '../../kind/kind-cluster.ts';
import { cidrContainsAddress, cidrContainsCidr, parseIpv4Cidr } from './ipv4-cidr.ts';
import { MAX_NETWORK_SLOT, networkSlot } from './slots.ts';

const all = Array.from({ length: MAX_NETWORK_SLOT + 1 }, (_, i) => networkSlot(i));
const overlap = (a: string, b: string) => {
  const [x, y] = [parseIpv4Cidr(a), parseIpv4Cidr(b)];
  return cidrContainsCidr(x, y) || cidrContainsCidr(y, x);
};

describe('embedded network slots', () => {
  it('slot 0 is the default cluster: verdict0, 10.244.0.0/24 in 10.244.0.0/16, NodePorts on 127.0.0.1', () => {
    expect(networkSlot()).toEqual(networkSlot(0));
    expect(networkSlot(0)).toMatchObject({
      pod: { bridge: 'verdict0', subnet: '10.244.0.0/24', gateway: '10.244.0.1', clusterCidr: '10.244.0.0/16' },
      nodePortHost: '127.0.0.1',
    });
  });

  it('every slot has its own bridge, namespace prefix, pod range and NodePort address; no two pod ranges overlap', () => {
    for (const k of ['bridge', 'namespacePrefix', 'subnet', 'gateway'] as const)
      expect(new Set(all.map((s) => s.pod[k])).size).toBe(all.length);
    expect(new Set(all.map((s) => s.nodePortHost)).size).toBe(all.length);
    for (const s of all) {
      expect(cidrContainsCidr(parseIpv4Cidr(s.pod.clusterCidr), parseIpv4Cidr(s.pod.subnet))).toBe(true);
      expect(cidrContainsAddress(parseIpv4Cidr(s.pod.subnet), s.pod.gateway)).toBe(true);
      expect(s.nodePortHost).toMatch(/^127\./);
      expect(s.pod.bridge.length).toBeLessThanOrEqual(15);
      // No prefix is the start of another's (the leftover sweep matches by prefix).
      for (const o of all) if (o !== s) expect(o.pod.namespacePrefix.startsWith(s.pod.namespacePrefix)).toBe(false);
    }
    // The pod subnets are apart; slots 1–7 are apart from each other's blackhole, and slot 0's /16
    // blackhole holds them only as a less specific route.
    for (const a of all)
      for (const b of all) if (a !== b) expect(overlap(a.pod.subnet, b.pod.subnet), `${a.slot}/${b.slot}`).toBe(false);
    for (const a of all.slice(1))
      for (const b of all.slice(1)) if (a !== b) expect(overlap(a.pod.clusterCidr, b.pod.clusterCidr)).toBe(false);
    // Apart from kind's ranges and the tests' scratch networks (10.244.200.0-10.244.251.255).
    for (const s of all) {
      expect(overlap(s.pod.clusterCidr, KIND_POD_SUBNET) || overlap(s.pod.clusterCidr, KIND_SERVICE_SUBNET)).toBe(false);
      if (s.slot > 0) expect(overlap(s.pod.clusterCidr, '10.244.192.0/18')).toBe(false);
    }
  });

  it('refuses a slot outside 0–7, naming the range', () => {
    for (const bad of [-1, 8, 1.5, Number.NaN]) expect(() => networkSlot(bad)).toThrow(/whole number from 0 to 7/);
  });
});
