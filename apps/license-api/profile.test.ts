import { afterEach, describe, expect, it } from 'vitest';
import { renderRelease } from '../../lib/kube/deploy.ts';
import { ofKind } from '../../lib/kube/render.ts';
import type { Platform } from '../../cluster/target.ts';
import { licenseApi, licenseApiToken, overlayFor } from './profile.ts';

// The profile asks the target what it offers (Target.platform), never which kind it is: a target of a
// kind it has never heard of gets the manifests and credentials its platform calls for.
const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

describe('the license API profile on a platform', () => {
  const inCluster: Platform = { services: 'in-cluster', secrets: 'throwaway' };
  const managed: Platform = { services: 'external', secrets: 'provided' };
  const host: Platform = { services: 'host', secrets: 'throwaway' };

  it('picks the overlay by where the backing services are', () => {
    expect([host, inCluster, managed].map(overlayFor)).toEqual(['embedded', 'kind', 'gke']);
    expect(licenseApi.release('v2', inCluster).kustomization).toMatch(/overlays\/kind$/);
  });

  it('dependencies in the cluster: the stand-in images are loaded and nothing is pulled; on the host: none', async () => {
    expect(licenseApi.supportImages!(inCluster).map((i) => i.ref)).toHaveLength(2);
    expect(licenseApi.supportImages!(host)).toEqual([]);
    const objects = await renderRelease(licenseApi.release('v2', inCluster));
    const pulls = ofKind(objects, 'Deployment').flatMap((o) => o.spec!.template.spec!.containers.map((c) => c.imagePullPolicy));
    expect(new Set(pulls)).toEqual(new Set(['Never']));
  });

  it("host services: the pods are pointed at the address the platform gives (an embedded cluster's network slot), else the overlay's", async () => {
    const urls = async (p: Platform) => {
      const secret = ofKind(await renderRelease(licenseApi.release('v2', p)), 'Secret')[0];
      const data = secret.data as Record<string, string>;
      return ['DATABASE_URL', 'REDIS_URL'].map((k) => Buffer.from(data[k], 'base64').toString());
    };
    expect(await urls(host)).toEqual(['postgres://postgres@10.244.0.1:5432/license', 'redis://10.244.0.1:6379']);
    expect(await urls({ ...host, hostServicesAddress: '10.244.16.1' })).toEqual([
      'postgres://postgres@10.244.16.1:5432/license',
      'redis://10.244.16.1:6379',
    ]);
  });

  it("a throw-away cluster's token is signed with the overlay's secret; provided secrets come from the environment", async () => {
    expect((await licenseApiToken(host, 'test')).split('.')).toHaveLength(3);
    delete process.env.LICENSE_TOKEN;
    delete process.env.TEST_TOKEN;
    await expect(licenseApiToken(managed)).rejects.toThrow(/needs a token: set LICENSE_TOKEN/);
    process.env.LICENSE_TOKEN = 'provided-token-123';
    expect(await licenseApiToken(managed)).toBe('provided-token-123');
  });
});
