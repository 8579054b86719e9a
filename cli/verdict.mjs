#!/usr/bin/env node
// The `verdict` bin (`npx verdict ...`). Plain JavaScript that any Node from 18 on can start: the CLI
// itself (cli/verdict.ts) is TypeScript that only Node 24 runs directly (type stripping); Node 20
// dies on it with ERR_UNKNOWN_FILE_EXTENSION.
//
//  - On Node 24 it imports cli/verdict.ts in this process.
//  - On any other Node it looks for Node 24 without downloading anything (VERDICT_NODE, then
//    `scripts/node24.sh --no-download`: PATH, then the cache in ~/.cache/verdict), and runs the CLI
//    there with the same arguments and stdio, forwarding the exit code and SIGINT/SIGTERM/SIGHUP.
//    The child gets a process group of its own, so a Ctrl-C reaches it exactly once (through us):
//    the CLI's commands tear down on the first signal and quit at once on a second.
//  - When Node 24 cannot be had it says what to run, and exits 3 (ERROR).
import { spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const WANT = 24;
const EXIT_ERROR = 3;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'cli', 'verdict.ts');
const major = (version) => Number(String(version).replace(/^v/, '').split('.')[0]);

/** The major version of a node binary, or null when it does not run. */
function versionOf(node) {
  const r = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return r.status === 0 ? major(r.stdout.trim()) : null;
}

function findNode24() {
  const explicit = process.env.VERDICT_NODE;
  if (explicit && versionOf(explicit) === WANT) return explicit;
  const r = spawnSync('bash', [join(root, 'scripts', 'node24.sh'), '--no-download'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0 || !r.stdout.trim()) return null;
  const node = join(r.stdout.trim(), 'node');
  return versionOf(node) === WANT ? node : null;
}

function explainAndExit() {
  const here = relative(process.cwd(), root);
  const cd = here === '' ? '' : `cd ${here.startsWith('..') ? root : here} && `;
  process.stderr.write(
    `verdict: needs Node ${WANT}; this is Node ${process.version} (${process.execPath}) and no Node ${WANT} was found\n` +
      `on PATH or in ${process.env.VERDICT_CACHE ?? '~/.cache/verdict'}. Get it with either of:\n` +
      `  ${cd}make setup                                # Node ${WANT} from the npm registry, npm ci, Debian packages\n` +
      `  ${cd}export PATH="$(scripts/node24.sh):$PATH"  # just Node ${WANT}, first on PATH in this shell\n` +
      `then run the command again (or point VERDICT_NODE at a Node ${WANT} binary).\n`,
  );
  process.exit(EXIT_ERROR);
}

if (major(process.versions.node) === WANT) {
  await import(pathToFileURL(cli).href);
} else {
  const node = findNode24();
  if (!node) explainAndExit();
  const child = spawn(node, [cli, ...process.argv.slice(2)], { stdio: 'inherit', detached: true });
  const forward = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, forward);
  child.on('error', (err) => {
    process.stderr.write(`verdict: cannot start ${node}: ${err.message}\n`);
    process.exitCode = EXIT_ERROR;
  });
  child.on('exit', (code, signal) => {
    for (const s of signals) process.off(s, forward);
    process.exitCode = code ?? 128 + (constants.signals[signal] ?? 0);
  });
}
