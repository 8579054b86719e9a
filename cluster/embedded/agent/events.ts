import { randomBytes } from 'node:crypto';
import type { k8s } from '../../../lib/kube/client.ts';

export type EventType = 'Normal' | 'Warning';

/** Records core/v1 Events about pods as the kubelet does (component "kubelet", host = node). */
export class EventRecorder {
  private readonly api: k8s.CoreV1Api;
  private readonly onError: (err: unknown) => void;
  constructor(api: k8s.CoreV1Api, onError: (err: unknown) => void = () => {}) {
    this.api = api;
    this.onError = onError;
  }

  pod(pod: k8s.V1Pod, type: EventType, reason: string, message: string, container?: string): void {
    const now = new Date();
    const ns = pod.metadata?.namespace ?? 'default';
    const body: k8s.CoreV1Event = {
      metadata: { name: `${pod.metadata?.name}.${randomBytes(8).toString('hex')}`, namespace: ns },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Pod',
        name: pod.metadata?.name,
        namespace: ns,
        uid: pod.metadata?.uid,
        fieldPath: container ? `spec.containers{${container}}` : undefined,
      },
      type,
      reason,
      message,
      source: { component: 'kubelet', host: pod.spec?.nodeName },
      reportingComponent: 'kubelet',
      reportingInstance: pod.spec?.nodeName,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.api.createNamespacedEvent({ namespace: ns, body }).catch(this.onError);
  }
}
