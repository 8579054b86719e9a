import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The command shell's interrupt rule and progress lines, in a process of their own: a command that
// opens the shell, waits for its signal, then cleans up for CLEANUP_MS.
const SHELL = resolve(import.meta.dirname, 'shell.ts');
let dir: string;
let script: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-shell-'));
  script = join(dir, 'command.ts');
  await writeFile(
    script,
    `import { openShell } from ${JSON.stringify(SHELL)};
using shell = openShell({ stopping: 'stopping; cleaning up what the run created first', secrets: ['s3cr3t-token-value'] });
shell.leaves('one seat, which expires by itself');
shell.say('sent s3cr3t-token-value to a service that answered \\x1b[31mred\\n::error::forged');
const busy = setInterval(() => {}, 1000); // a command's own work keeps it running
process.stdout.write('ready\\n');
await new Promise((r) => shell.signal.addEventListener('abort', r));
process.stdout.write('error: ' + shell.errorOf(new Error('not this')) + '\\n');
await new Promise((r) => setTimeout(r, Number(process.env.CLEANUP_MS)));
process.stdout.write('cleaned up\\n');
clearInterval(busy);
`,
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Runs the command, sends SIGINT once it is ready and again once it is cleaning up, if `twice`. */
function run(twice: boolean, cleanupMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [script], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CLEANUP_MS: String(cleanupMs) },
    });
    let stdout = '';
    let stderr = '';
    let sent = 0;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (sent === 0 && stdout.includes('ready\n')) {
        child.kill('SIGINT');
        sent++;
      }
      if (twice && sent === 1 && stdout.includes('error: ')) {
        child.kill('SIGINT');
        sent++;
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('the command shell', () => {
  it('the first Ctrl-C aborts the signal and lets the cleanup finish; progress is redacted and sanitised', async () => {
    const r = await run(false, 300);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('error: interrupted: interrupted by SIGINT\n');
    expect(r.stdout).toContain('cleaned up\n');
    expect(r.stderr).toMatch(
      /^\[ +\d+\.\ds\] SIGINT: stopping; cleaning up what the run created first \(again to quit at once\)$/m,
    );
    expect(r.stderr).toContain('sent [REDACTED] to a service that answered \\x1b[31mred\\n::error::forged');
    expect(r.stderr).not.toContain('s3cr3t');
    expect(r.stderr.split('\n').filter((l) => l.startsWith('::'))).toEqual([]);
  }, 30_000);

  it('a second Ctrl-C quits at once with exit 130, saying what may be left behind', async () => {
    const r = await run(true, 30_000);
    expect(r.code).toBe(130);
    expect(r.stdout).not.toContain('cleaned up');
    expect(r.stderr).toMatch(/SIGINT again: quitting at once; this may be left behind: one seat, which expires by itself$/m);
  }, 30_000);
});
