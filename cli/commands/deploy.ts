import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { readClusterState, stateDirOf } from '../../cluster/embedded/state.ts';
import { loadKubeConfig } from '../../lib/kube/client.ts';
import { deployRelease } from '../../lib/kube/deploy.ts';
import { parseImageRef } from '../../cluster/embedded/image-store.ts';
import { UsageError } from '../exit-codes.ts';
import { checkDeployWindowOrRefuse, windowOptions, type WindowFlags } from '../deploy-window.ts';

/** `verdict deploy`: apply an overlay with a given image and wait for the rollout (kubectl apply + rollout status). */
export function deployCommand(): Command {
  return new Command('deploy')
    .description('deploy the license API (an overlay, a given image) and wait until the rollout completes')
    .addOption(new Option('--overlay <name>', 'kustomize overlay').choices(['embedded', 'kind', 'gke']).default('embedded'))
    .requiredOption('--image <ref>', 'image reference, e.g. license-api:v2')
    .option('--kubeconfig <path>', "kubeconfig (default: the embedded cluster's, else $KUBECONFIG)")
    .option('--context <name>', 'kubeconfig context')
    .option('--name <name>', 'embedded cluster name', 'verdict')
    .option('--timeout <seconds>', 'rollout timeout', (v) => Number(v), 600)
    .option('--no-wait', 'apply and return at once (verdict gate then waits for the rollout and judges it)')
    .addOption(windowOptions.environment())
    .addOption(windowOptions.overrideWindow())
    .addOption(windowOptions.config())
    .addHelpText(
      'after',
      '\nOutside the environment\'s deploy window (deployWindows in verdict.config.yaml) it refuses with exit 64 and the\nnext allowed time, before contacting the cluster; --override-window "<reason>" proceeds and says who and why.\n\nExample:\n  verdict image build --tag v2 && verdict deploy --overlay embedded --image license-api:v2',
    )
    .action(
      async (
        o: WindowFlags & {
          overlay: string;
          image: string;
          kubeconfig?: string;
          context?: string;
          name: string;
          timeout: number;
          wait: boolean;
        },
      ) => {
        let tag: string;
        try {
          tag = parseImageRef(o.image).tag;
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        // The embedded cluster's own kubeconfig for the embedded overlay; otherwise $KUBECONFIG / ~/.kube/config.
        const kubeconfig =
          o.kubeconfig ?? (o.overlay === 'embedded' ? (await readClusterState(stateDirOf(o.name)))?.kubeconfig : undefined);
        const kc = loadKubeConfig(kubeconfig, o.context);
        // Before anything reaches the cluster: a closed window refuses (exit 64) unless overridden.
        await checkDeployWindowOrRefuse('deploy', o, { context: o.context ?? (kc.getCurrentContext() || null) });
        const started = Date.now();
        await deployRelease(
          kc,
          {
            kustomization: fileURLToPath(new URL(`../../license-api/kubernetes/overlays/${o.overlay}`, import.meta.url)),
            deployment: 'license-api',
            container: 'license-api',
            image: o.image,
            version: tag,
          },
          { timeoutMs: o.timeout * 1000, wait: o.wait, onProgress: (m) => process.stderr.write(`${m}\n`) },
        );
        process.stdout.write(
          o.wait
            ? `deployed ${o.image} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`
            : `applied ${o.image}; not waiting for the rollout\n`,
        );
      },
    );
}
