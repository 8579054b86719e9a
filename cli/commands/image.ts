import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { licenseApi } from '../../apps/license-api/profile.ts';
import { ImageStore, parseImageRef } from '../../cluster/embedded/image-store.ts';
import { stateDirOf } from '../../cluster/embedded/state.ts';
import { dockerfileBaseImages } from '../../lib/docker/cli.ts';
import { findEngine, type EngineEndpoint } from '../../lib/docker/engine.ts';
import { buildImage, ensureBaseImage, imagePresent, LOCAL_NODE_IMAGE } from '../../lib/docker/images.ts';
import { UsageError } from '../exit-codes.ts';

/**
 * The base for a Docker build of the license API: the Dockerfile's own (the official image pinned
 * by digest) when the engine has it, else the local registry-free base (made when missing and
 * possible). Nothing is pulled.
 */
async function nodeImageFor(
  engine: EngineEndpoint,
  dockerfile: string,
  explicit: string | undefined,
  say: (m: string) => void,
): Promise<string> {
  if (explicit) return explicit;
  const official = dockerfileBaseImages(readFileSync(dockerfile, 'utf8'))[0];
  if (official && (await imagePresent(engine, official))) return official;
  if (await imagePresent(engine, LOCAL_NODE_IMAGE)) return LOCAL_NODE_IMAGE;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `the engine has neither ${official} (docker pull it where a registry is reachable) nor ${LOCAL_NODE_IMAGE} (scripts/docker-base.sh makes it, as root)`,
    );
  }
  say(`${official} is not present (and is never pulled): making ${LOCAL_NODE_IMAGE} with scripts/docker-base.sh`);
  return (await ensureBaseImage(engine, { onProgress: say })).ref;
}

/** `verdict image build|list`: `docker build` when an engine answers, else the embedded cluster's image store. */
export function imageCommand(): Command {
  const cmd = new Command('image').description(
    "build license-api images: with Docker when an engine answers, else into the embedded cluster's image store",
  );
  cmd
    .command('build')
    .description(
      "build license-api:<tag>: `docker build` when a Docker engine answers, else into the embedded cluster's image store",
    )
    .requiredOption('--tag <tag>', 'image tag, e.g. v2 (also the version the app reports)')
    .addOption(
      new Option('--builder <builder>', 'auto (Docker when an engine answers, else the image store), docker, or store')
        .choices(['auto', 'docker', 'store'])
        .default('auto'),
    )
    .option(
      '--node-image <ref>',
      "Docker only: the NODE_IMAGE build argument (default: the Dockerfile's pinned official image when present, else verdict/node:24-bookworm-local)",
    )
    .option('--name <name>', 'embedded cluster name (image store)', 'verdict')
    .option('--state-dir <dir>', "the embedded cluster's state directory (image store)")
    .addHelpText(
      'after',
      `
Docker: the engine at DOCKER_HOST, /var/run/docker.sock, or the one verdict starts for its tests
(/var/lib/verdict/docker/docker.sock). The classic builder; nothing is pulled. For kind, then:
  kind load docker-image license-api:v2 --name verdict`,
    )
    .action(
      async (o: { tag: string; builder: 'auto' | 'docker' | 'store'; nodeImage?: string; name: string; stateDir?: string }) => {
        const ref = `license-api:${o.tag}`;
        try {
          parseImageRef(ref);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        const say = (m: string) => process.stderr.write(`${m}\n`);
        const src = licenseApi.image(o.tag);
        const engine = o.builder === 'store' ? null : await findEngine();
        if (o.builder === 'docker' && !engine) {
          throw new Error(
            '--builder docker: no Docker engine answers (DOCKER_HOST, /var/run/docker.sock, /var/lib/verdict/docker/docker.sock); start one (as root: node lib/docker/engine.ts up) or use --builder store',
          );
        }
        if (engine && src.docker) {
          const dockerfile = src.docker.dockerfile ?? join(src.docker.context, 'Dockerfile');
          const nodeImage = await nodeImageFor(engine, dockerfile, o.nodeImage, say);
          say(
            `a Docker engine answers at ${engine.host} (${engine.source}): docker build -t ${ref} (classic builder, NODE_IMAGE=${nodeImage}, never pulls)`,
          );
          const built = await buildImage(engine, {
            context: src.docker.context,
            dockerfile: src.docker.dockerfile,
            tag: ref,
            buildArgs: { ...src.docker.buildArgs, NODE_IMAGE: nodeImage },
          });
          process.stdout.write(
            `built ${ref} with Docker in ${built.ms} ms: ${built.id.slice(0, 19)}, ${(built.sizeBytes / 1e6).toFixed(0)} MB (engine ${engine.host})\n`,
          );
          return;
        }
        if (o.builder === 'auto') say("no Docker engine answers: building into the embedded cluster's image store");
        if (!src.bundle) throw new Error(`the app profile gives no bundle for ${ref}: the image store cannot build it`);
        const store = new ImageStore(stateDirOf(o.name, o.stateDir));
        const started = Date.now();
        const img = await store.add(ref, src.bundle.cmd, src.bundle.fill);
        await store.runtimeNode();
        process.stdout.write(`built ${ref} into the embedded image store in ${Date.now() - started} ms → ${img.dir}\n`);
      },
    );
  cmd
    .command('list')
    .description("list the images in the embedded cluster's store")
    .option('--name <name>', 'cluster name', 'verdict')
    .option('--state-dir <dir>', "the cluster's state directory")
    .action(async (o: { name: string; stateDir?: string }) => {
      for (const ref of await new ImageStore(stateDirOf(o.name, o.stateDir)).list()) process.stdout.write(`${ref}\n`);
    });
  return cmd;
}
