import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Bundles the license API into one ESM file plus its SQL migrations: what the container image
 * ships (Dockerfile) and what the embedded cluster's image store holds (`verdict image build`).
 * No node_modules at run time: every production dependency is inside `server.mjs`.
 */
export async function buildLicenseApi(
  outDir: string,
  meta: { version?: string } = {},
): Promise<{ entry: string; outDir: string }> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const entry = join(outDir, 'server.mjs');
  await build({
    entryPoints: [join(here, 'src/main.ts')],
    outfile: entry,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    sourcemap: false,
    legalComments: 'linked',
    // pg's optional native binding is never used; keep it out of the bundle.
    external: ['pg-native'],
    // CommonJS dependencies in an ESM bundle need a require().
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
  await cp(join(here, 'migrations'), join(outDir, 'migrations'), { recursive: true });
  await writeFile(
    join(outDir, 'image.json'),
    JSON.stringify({ name: 'license-api', version: meta.version ?? 'dev', builtAt: new Date().toISOString() }, null, 2) + '\n',
  );
  return { entry, outDir };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? join(here, '..', 'dist', 'license-api');
  const r = await buildLicenseApi(out, { version: process.env.APP_VERSION });
  process.stdout.write(`${r.entry}\n`);
}
