import { Command } from 'commander';
import { ImageStore, parseImageRef } from '../../cluster/embedded/image-store.ts';
import { stateDirOf } from '../../cluster/embedded/state.ts';
import { buildLicenseApi } from '../../license-api/build.ts';
import { UsageError } from '../exit-codes.ts';

/** `verdict image build|list`: the embedded cluster's images (the twin of docker build + kind load). */
export function imageCommand(): Command {
  const cmd = new Command('image').description('build license-api images into the embedded cluster\'s image store');
  cmd.command('build')
    .description('build license-api:<tag> and load it into the embedded cluster')
    .requiredOption('--tag <tag>', 'image tag, e.g. v2 (also the version the app reports)')
    .option('--name <name>', 'cluster name', 'verdict')
    .option('--state-dir <dir>', 'the cluster\'s state directory')
    .addHelpText('after', '\nWith Docker and kind instead:\n  docker build -t license-api:v2 . && kind load docker-image license-api:v2 --name verdict')
    .action(async (o: { tag: string; name: string; stateDir?: string }) => {
      const ref = `license-api:${o.tag}`;
      try { parseImageRef(ref); } catch (err) { throw new UsageError((err as Error).message); }
      const store = new ImageStore(stateDirOf(o.name, o.stateDir));
      const started = Date.now();
      const img = await store.add(ref, ['node', 'server.mjs'], async (dir) => { await buildLicenseApi(dir, { version: o.tag }); });
      await store.runtimeNode();
      process.stdout.write(`built ${ref} in ${Date.now() - started} ms → ${img.dir}\n`);
    });
  cmd.command('list')
    .description('list the images in the embedded cluster\'s store')
    .option('--name <name>', 'cluster name', 'verdict')
    .option('--state-dir <dir>', 'the cluster\'s state directory')
    .action(async (o: { name: string; stateDir?: string }) => {
      for (const ref of await new ImageStore(stateDirOf(o.name, o.stateDir)).list()) process.stdout.write(`${ref}\n`);
    });
  return cmd;
}
