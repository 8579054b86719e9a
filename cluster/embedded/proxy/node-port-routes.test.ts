import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { nodePortRoutes, routableBackends } from './node-port-routes.ts';

const svc = (
  name: string,
  type: string,
  ports: { name?: string; port: number; nodePort?: number; protocol?: string }[],
): V1Service => ({
  metadata: { namespace: 'ns', name },
  spec: { type, ports },
});

const slice = (
  name: string,
  service: string,
  ports: { name?: string; port: number }[],
  endpoints: V1EndpointSlice['endpoints'],
  addressType = 'IPv4',
): V1EndpointSlice => ({
  metadata: { namespace: 'ns', name, labels: { 'kubernetes.io/service-name': service } },
  addressType,
  ports,
  endpoints,
});

describe('nodePortRoutes', () => {
  it('builds one route per TCP node port, matching slice ports by name', () => {
    const routes = nodePortRoutes(
      [
        svc('api', 'NodePort', [
          { name: 'http', port: 80, nodePort: 30080 },
          { name: 'metrics', port: 9090, nodePort: 30090 },
          { name: 'dns', port: 53, nodePort: 30053, protocol: 'UDP' },
        ]),
        svc('internal', 'ClusterIP', [{ name: 'http', port: 80 }]),
      ],
      [
        slice(
          'api-1',
          'api',
          [
            { name: 'http', port: 8080 },
            { name: 'metrics', port: 9464 },
          ],
          [
            {
              addresses: ['10.244.0.3'],
              conditions: { ready: true },
              targetRef: { kind: 'Pod', name: 'api-b', namespace: 'ns' },
              nodeName: 'n1',
            },
            { addresses: ['10.244.0.2'], conditions: {}, targetRef: { kind: 'Pod', name: 'api-a', namespace: 'ns' } },
          ],
        ),
        slice('internal-1', 'internal', [{ name: 'http', port: 8080 }], [{ addresses: ['10.244.0.9'] }]),
      ],
    );
    expect(routes.map((r) => [r.nodePort, r.service, r.portName])).toEqual([
      [30080, 'ns/api', 'http'],
      [30090, 'ns/api', 'metrics'],
    ]);
    expect(routes[0].backends).toEqual([
      { ip: '10.244.0.2', port: 8080, podName: 'api-a', podNamespace: 'ns', ready: true, serving: true, terminating: false },
      {
        ip: '10.244.0.3',
        port: 8080,
        podName: 'api-b',
        podNamespace: 'ns',
        nodeName: 'n1',
        ready: true,
        serving: true,
        terminating: false,
      },
    ]);
    expect(routes[1].backends.map((b) => b.port)).toEqual([9464, 9464]);
  });

  it('merges slices, prefers a ready duplicate, ignores other services, namespaces and IPv6/FQDN slices', () => {
    const other = slice('x', 'api', [{ port: 1 }], [{ addresses: ['10.244.0.50'] }]);
    other.metadata!.namespace = 'elsewhere';
    const routes = nodePortRoutes(
      [svc('api', 'LoadBalancer', [{ port: 80, nodePort: 30080 }])],
      [
        slice('a', 'api', [{ port: 8080 }], [{ addresses: ['10.244.0.2'], conditions: { ready: false, serving: false } }]),
        slice(
          'b',
          'api',
          [{ port: 8080 }],
          [
            { addresses: ['10.244.0.2'], conditions: { ready: true } },
            { addresses: ['10.244.0.10'], conditions: { ready: false, serving: true, terminating: true } },
          ],
        ),
        slice('c', 'api', [{ port: 8080 }], [{ addresses: ['fd00::1'] }], 'IPv6'),
        slice('d', 'other', [{ port: 8080 }], [{ addresses: ['10.244.0.99'] }]),
        other,
      ],
    );
    expect(routes).toHaveLength(1);
    expect(routes[0].backends.map((b) => [b.ip, b.ready])).toEqual([
      ['10.244.0.2', true],
      ['10.244.0.10', false],
    ]);
  });

  it('routes only ready endpoints, falling back to serving+terminating ones when none is ready', () => {
    const [route] = nodePortRoutes(
      [svc('api', 'NodePort', [{ port: 80, nodePort: 30080 }])],
      [
        slice(
          'a',
          'api',
          [{ port: 8080 }],
          [
            { addresses: ['10.244.0.2'], conditions: { ready: false, serving: true, terminating: true } },
            { addresses: ['10.244.0.3'], conditions: { ready: false, serving: false, terminating: true } },
            { addresses: ['10.244.0.4'], conditions: { ready: false, serving: false, terminating: false } },
          ],
        ),
      ],
    );
    expect(routableBackends(route, true).map((b) => b.ip)).toEqual(['10.244.0.2']);
    expect(routableBackends(route, false)).toEqual([]);
    route.backends.push({ ip: '10.244.0.5', port: 8080, ready: true, serving: true, terminating: false });
    expect(routableBackends(route, true).map((b) => b.ip)).toEqual(['10.244.0.5']);
  });

  it('gives a NodePort Service without slices an empty route (its port still listens, and rejects)', () => {
    const routes = nodePortRoutes([svc('api', 'NodePort', [{ port: 80, nodePort: 30080 }])], []);
    expect(routes).toEqual([{ nodePort: 30080, service: 'ns/api', portName: '', backends: [] }]);
  });
});
