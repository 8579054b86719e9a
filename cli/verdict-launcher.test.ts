import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, type TestServer } from '../lib/load/testing/servers.ts';

/**
 * cli/verdict.mjs, the package's bin, started by an older Node: the machines this project is built
 * on ship Node 20 as /usr/bin/node. (Skipped where no Node other than 24 is installed.)
 */
const launcher = resolve(import.meta.dirname, 'verdict.mjs');
const root = resolve(import.meta.dirname, '..');
const OLD_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find((n) => {
  const r = spawnSync(n, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  return r.status === 0 && !r.stdout.startsWith('24.');
});
// Node 24 must be findable without PATH: in the cache scripts/node24.sh fills (make setup does).
const node24Cached =
  spawnSync('bash', [join(root, 'scripts/node24.sh'), '--no-download'], { env: { ...process.env, PATH: '/usr/bin:/bin' } })
    .status === 0;
const plainEnv = () => ({ ...process.env, PATH: '/usr/bin:/bin', CI: 'true' });

/**
 * Runs the launcher. With `toGroup`, it gets a process group of its own and the signal goes to the
 * whole group, as a terminal's Ctrl-C goes to its foreground process group.
 */
function run(
  node: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { signalOn?: RegExp; signal?: NodeJS.Signals; toGroup?: boolean } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(node, [launcher, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
      cwd: root,
      detached: opts.toGroup ?? false,
    });
    let stdout = '',
      stderr = '',
      sent = false;
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      if (opts.signalOn && !sent && opts.signalOn.test(stderr)) {
        sent = true;
        if (opts.toGroup) process.kill(-child.pid!, opts.signal ?? 'SIGTERM');
        else child.kill(opts.signal ?? 'SIGTERM');
      }
    });
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe.skipIf(!OLD_NODE)(`the verdict bin on an older Node (${OLD_NODE})`, () => {
  let server: TestServer;
  const scratch = mkdtempSync(join(tmpdir(), 'verdict-launcher-'));
  beforeAll(async () => {
    server = await startTestServer(ok('pod-a', 'v1'));
  });
  afterAll(async () => {
    await server?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it.skipIf(!node24Cached)(
    'runs the CLI on Node 24: --help exits 0',
    async () => {
      const r = await run(OLD_NODE!, ['--help'], plainEnv());
      expect(r.stderr).not.toMatch(/ERR_UNKNOWN_FILE_EXTENSION/);
      expect(r.stdout).toMatch(/^Usage: verdict \[options\] \[command\]/);
      expect(r.stdout).toMatch(/report \[options\] <run-dir>/);
      expect(r.code).toBe(0);
    },
    60_000,
  );

  it.skipIf(!node24Cached)(
    'forwards the exit code',
    async () => {
      const r = await run(OLD_NODE!, ['report', join(scratch, 'missing')], plainEnv());
      expect(r.code).toBe(64);
      expect(r.stderr).toMatch(/missing does not exist/);
    },
    60_000,
  );

  // A Ctrl-C goes to the terminal's whole foreground process group. Were the CLI in the launcher's
  // group, it would get the signal twice (from the terminal and forwarded), and a second signal
  // makes the CLI quit at once without tearing down. (Whether the two arrive apart or merge into
  // one pending signal is a race, so this test shows the right behaviour rather than always
  // catching the wrong one.)
  const cases = [
    { signal: 'SIGTERM', toGroup: false, what: 'SIGTERM sent to the launcher' },
    { signal: 'SIGINT', toGroup: true, what: 'Ctrl-C (SIGINT to the whole process group)' },
  ] as const;
  for (const c of cases) {
    it.skipIf(!node24Cached)(
      `${c.what} reaches the CLI exactly once: the run stops cleanly`,
      async () => {
        const r = await run(
          OLD_NODE!,
          ['load', '--url', server.url, '--rate', '50/s', '--duration', '60s', '--progress-every', '300ms'],
          plainEnv(),
          { signalOn: /^load: .*ok [1-9]/m, signal: c.signal, toGroup: c.toGroup },
        );
        expect(r.stderr).toContain(`load: ${c.signal}: stopping`);
        expect(r.stderr.match(/: stopping/g)).toHaveLength(1);
        expect(r.stdout).toMatch(new RegExp(`interrupted by ${c.signal}`));
        expect(r.code).toBe(2); // INCONCLUSIVE: aborted; not 130 (a second signal quits at once) and not killed
      },
      90_000,
    );
  }

  it('without Node 24 anywhere: says exactly what to run, exits 3', async () => {
    const r = await run(OLD_NODE!, ['--help'], { ...plainEnv(), VERDICT_CACHE: join(scratch, 'empty-cache') });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^verdict: needs Node 24; this is Node v\d+/);
    expect(r.stderr).toContain('  make setup ');
    expect(r.stderr).toContain('  export PATH="$(scripts/node24.sh):$PATH" ');
  }, 60_000);
});

describe('the verdict bin on Node 24', () => {
  it('runs the CLI in the same process', async () => {
    const r = await run(process.execPath, ['--help'], { ...process.env, CI: 'true' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: verdict/);
  }, 60_000);
});
