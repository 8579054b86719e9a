import { loadKubeConfig, k8s, messageOf } from '../../lib/kube/client.ts';
import type { OpenOptions, Platform, Target, TargetStrategy } from '../target.ts';

/** Someone's cluster: managed backing services, credentials from the environment. */
export const EXISTING_PLATFORM: Platform = { services: 'external', secrets: 'provided' };

/**
 * A cluster someone else runs, reached through a kubeconfig context: never created, never deleted,
 * no image loading, no control over its dependencies. The Service is reached at the URL the user
 * gives (`--url`): the harness cannot know how the cluster is exposed.
 */
export async function openExisting(opts: OpenOptions & { context: string }): Promise<Target> {
  const kubeConfig = loadKubeConfig(opts.kubeconfig, opts.context);
  if (!kubeConfig.getContextObject(opts.context)) {
    throw new Error(
      `kubeconfig has no context "${opts.context}" (contexts: ${
        kubeConfig
          .getContexts()
          .map((c) => c.name)
          .join(', ') || 'none'
      })`,
    );
  }
  const version = kubeConfig.makeApiClient(k8s.VersionApi);
  try {
    await version.getCode();
  } catch (err) {
    throw new Error(`context "${opts.context}" does not answer: ${messageOf(err)}`);
  }
  const target: Target = {
    kind: 'existing',
    platform: EXISTING_PLATFORM,
    name: opts.context,
    context: opts.context,
    kubeConfig,
    kubeconfigPath: opts.kubeconfig ?? process.env.KUBECONFIG ?? null,
    owned: false,
    endpointLagMs: null,
    serviceUrl() {
      if (!opts.serviceUrl)
        throw new Error(
          `say how this machine reaches the Service on context "${opts.context}": give --url (e.g. the load balancer's or a port-forward's URL)`,
        );
      return opts.serviceUrl.replace(/\/$/, '');
    },
    async serverVersion() {
      try {
        return (await version.getCode()).gitVersion;
      } catch {
        return null;
      }
    },
    async close() {},
    async [Symbol.asyncDispose]() {},
  };
  return target;
}

export const existingStrategy: TargetStrategy = {
  kind: 'existing',
  async available() {
    return { ok: true };
  },
  open: (opts) => {
    if (!opts.context) throw new Error('an existing target needs a context: --target context:<name>');
    return openExisting({ ...opts, context: opts.context });
  },
};
