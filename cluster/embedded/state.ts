import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where embedded clusters keep their state, one directory per cluster name. */
export const DEFAULT_STATE_ROOT = '/var/lib/verdict';

export interface ClusterStateFile {
  name: string;
  pid: number;
  kubeconfig: string;
  startedAt: string;
  /** The pod network's gateway (pods reach this machine there) and the cluster CIDR; absent in older files. */
  gateway?: string;
  clusterCidr?: string;
  /** Where its NodePorts answer on this machine (127.0.0.1 for network slot 0); absent in older files. */
  nodePortHost?: string;
  /** The Service proxy's endpoint lag (ms); absent in older files. */
  endpointLagMs?: number;
}

export function stateDirOf(name: string, stateDir?: string): string {
  return stateDir ?? join(DEFAULT_STATE_ROOT, name);
}

/** The running embedded cluster's state file, or undefined when none is recorded. */
export async function readClusterState(stateDir: string): Promise<ClusterStateFile | undefined> {
  try {
    // The file embedded-cluster.ts writes (older files lack the optional fields).
    return JSON.parse(await readFile(join(stateDir, 'cluster.json'), 'utf8')) as ClusterStateFile;
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
