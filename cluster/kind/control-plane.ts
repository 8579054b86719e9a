/**
 * kind's control-plane outage: its kube-apiserver is a static pod, so taking its manifest out of
 * the kubelet's manifest folder stops it (the kubelet stops a static pod whose file is gone) and
 * putting the file back starts it again, on the same etcd, certificates and address. The controller
 * manager and the scheduler keep running but see no API meanwhile, as in a zonal control-plane
 * upgrade. Done with `docker exec` in the control-plane node container.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlaneControl, Injection } from '../capabilities.ts';

/** Where kubeadm (and so kind) puts the apiserver's static pod, and where the outage parks it meanwhile (outside the watched folder). */
export const KIND_APISERVER_MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml';
export const KIND_APISERVER_PARKED = '/etc/kubernetes/kube-apiserver.yaml.verdict-outage';
export const KIND_APISERVER = 'kube-apiserver';

export interface KindControlPlaneOptions {
  /** The control-plane node's container. */
  node: string;
  /** `docker exec <node> <cmd...>`, resolving with its stdout (rejecting on a non-zero exit). */
  exec(node: string, cmd: string[]): Promise<string>;
  /** Whether the apiserver answers now (e.g. /readyz or /version within a few seconds). */
  apiAnswers(): Promise<boolean>;
  /** How long the kubelet may take to stop or start the static pod (default 120 s each way). */
  timeoutMs?: number;
  pollMs?: number;
}

async function until(
  what: string,
  cond: () => Promise<boolean>,
  o: { timeoutMs: number; pollMs: number; signal?: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    o.signal?.throwIfAborted();
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`${what} within ${o.timeoutMs / 1000} s`);
    await sleep(o.pollMs, undefined, { signal: o.signal });
  }
}

export function kindControlPlane(o: KindControlPlaneOptions): ControlPlaneControl {
  const timing = { timeoutMs: o.timeoutMs ?? 120_000, pollMs: o.pollMs ?? 500 };
  // A move that leaves an existing target alone (-n) and fails when there is nothing to move.
  const move = (from: string, to: string) => o.exec(o.node, ['sh', '-c', `test -f '${from}' && mv -n '${from}' '${to}'`]);
  const parked = async () =>
    (await o.exec(o.node, ['sh', '-c', `test -f '${KIND_APISERVER_PARKED}' && echo parked || true`])).trim() === 'parked';
  return {
    components: () => [KIND_APISERVER],
    async stop(component, signal) {
      if (component !== KIND_APISERVER)
        throw new Error(
          `kind stops only its ${KIND_APISERVER} static pod (the others keep running without an API), not "${component}"`,
        );
      await move(KIND_APISERVER_MANIFEST, KIND_APISERVER_PARKED);
      let recovering: Promise<void> | undefined;
      const injection: Injection = {
        what: `${KIND_APISERVER} static pod taken away (${KIND_APISERVER_MANIFEST} moved out of the manifest folder in ${o.node})`,
        recover: (s) =>
          (recovering ??= (async () => {
            if (await parked()) await move(KIND_APISERVER_PARKED, KIND_APISERVER_MANIFEST);
            await until(`the kubelet did not start ${KIND_APISERVER} again`, o.apiAnswers, { ...timing, signal: s });
          })().catch((err) => {
            recovering = undefined;
            throw err;
          })),
      };
      try {
        await until(`the kubelet did not stop ${KIND_APISERVER}`, async () => !(await o.apiAnswers()), { ...timing, signal });
      } catch (err) {
        await injection.recover().catch(() => {});
        throw err;
      }
      return injection;
    },
  };
}
