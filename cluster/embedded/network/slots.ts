import {
  type PodNetworkOptions,
  DEFAULT_BRIDGE,
  DEFAULT_CLUSTER_CIDR,
  DEFAULT_GATEWAY,
  DEFAULT_NAMESPACE_PREFIX,
  DEFAULT_SUBNET,
} from './pod-network.ts';

/** The highest slot: eight embedded clusters can run side by side on one machine. */
export const MAX_NETWORK_SLOT = 7;

/** Where one embedded cluster's pods live and where its NodePorts answer on this machine. */
export interface NetworkSlot {
  slot: number;
  pod: Required<Omit<PodNetworkOptions, 'stateDir'>>;
  /** The loopback address the NodePort proxy listens on besides the pod gateway. */
  nodePortHost: string;
}

/**
 * Embedded clusters side by side. Slot 0 is the default: bridge verdict0, pods in 10.244.0.0/24
 * inside a blackholed 10.244.0.0/16, namespaces `verdict-…`, NodePorts on 127.0.0.1. Slot n (1–7):
 * bridge `verdict<n>`, pods in 10.244.<16n>.0/24 inside its own blackholed 10.244.<16n>.0/20,
 * namespaces `verdict<n>-…`, NodePorts on 127.0.<n>.1. Every slot stays inside 10.244.0.0/16 (the
 * range the kind provider keeps clear of) and below the tests' scratch networks (10.244.200–251);
 * a more specific route wins, so slot 0's /16 blackhole does not swallow another slot's pods.
 */
export function networkSlot(slot = 0): NetworkSlot {
  if (!Number.isInteger(slot) || slot < 0 || slot > MAX_NETWORK_SLOT)
    throw new RangeError(`the embedded cluster's network slot is a whole number from 0 to ${MAX_NETWORK_SLOT}, got ${slot}`);
  if (slot === 0)
    return {
      slot,
      pod: {
        bridge: DEFAULT_BRIDGE,
        subnet: DEFAULT_SUBNET,
        gateway: DEFAULT_GATEWAY,
        clusterCidr: DEFAULT_CLUSTER_CIDR,
        namespacePrefix: DEFAULT_NAMESPACE_PREFIX,
      },
      nodePortHost: '127.0.0.1',
    };
  const third = 16 * slot;
  return {
    slot,
    pod: {
      bridge: `verdict${slot}`,
      subnet: `10.244.${third}.0/24`,
      gateway: `10.244.${third}.1`,
      clusterCidr: `10.244.${third}.0/20`,
      namespacePrefix: `verdict${slot}-`,
    },
    nodePortHost: `127.0.${slot}.1`,
  };
}
