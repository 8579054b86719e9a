import { runCommand } from './run-command.ts';

/** Where Debian's containernetworking-plugins installs the CNI plugins. */
export const CNI_PATH = '/usr/lib/cni';

/** The part of a CNI 1.0.0 ADD result that we read. */
export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { interface?: number; address: string; gateway?: string }[];
}

/**
 * Calls one CNI plugin binary the way a container runtime does (CNI spec 1.0: parameters in the
 * environment, network configuration on stdin, result or error as JSON on stdout).
 */
export async function runCniPlugin(
  command: 'ADD' | 'DEL' | 'CHECK',
  config: { type: string } & Record<string, unknown>,
  params: { containerId: string; netnsPath: string; ifName: string },
): Promise<CniResult | undefined> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: params.containerId,
    CNI_NETNS: params.netnsPath,
    CNI_IFNAME: params.ifName,
    CNI_PATH,
  };
  const r = await runCommand([`${CNI_PATH}/${config.type}`], { input: JSON.stringify(config), env });
  if (r.code !== 0) {
    let detail = (r.stdout || r.stderr).trim();
    try {
      const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
      detail = `code ${e.code}: ${e.msg}${e.details ? ` (${e.details})` : ''}`;
    } catch {
      /* not JSON: keep the raw text */
    }
    throw new Error(`CNI ${config.type} ${command} for ${params.containerId} failed: ${detail}`);
  }
  if (command !== 'ADD') return undefined;
  return JSON.parse(r.stdout) as CniResult;
}
