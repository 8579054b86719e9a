/**
 * Bundles the engine, the agent entry point and (optionally) a scenario into one ESM file that runs
 * with plain `node` and no node_modules: the load agent to copy into a pod for distributed load.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface BundleOptions {
  /** Scenario module to compile in; without it the agent requests the URL's path. */
  scenario?: string;
  outfile: string;
  minify?: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));

export async function bundleLoadAgent(opts: BundleOptions): Promise<{ outfile: string; bytes: number }> {
  const agent = resolve(here, 'agent.ts');
  const scenario = opts.scenario ? resolve(opts.scenario) : null;
  const contents = [
    `import { runAgent } from ${JSON.stringify(agent)};`,
    scenario ? `import * as scenarioModule from ${JSON.stringify(scenario)};` : '',
    `const scenario = ${scenario ? 'scenarioModule.default ?? scenarioModule.scenario' : 'undefined'};`,
    'process.exitCode = await runAgent(scenario);',
  ].join('\n');
  const outfile = resolve(opts.outfile);
  await build({
    stdin: { contents, resolveDir: here, sourcefile: 'load-agent-entry.ts', loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    outfile,
    minify: opts.minify ?? false,
    legalComments: 'inline',
    // undici and other CommonJS dependencies call require() for Node built-ins.
    banner: {
      js: "import { createRequire as __verdictCreateRequire } from 'node:module'; const require = __verdictCreateRequire(import.meta.url);",
    },
    logLevel: 'silent',
  });
  return { outfile, bytes: (await stat(outfile)).size };
}
