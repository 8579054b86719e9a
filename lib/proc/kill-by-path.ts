import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * Kills every process whose command line mentions `path` or whose working directory is inside it
 * (SIGTERM, then SIGKILL after `graceMs`):
 * how `cluster down` finds what an interrupted or killed run left behind (the control plane,
 * Postgres and Redis keep their data under the cluster's state directory). Returns the pids found.
 */
export async function killProcessesUsing(path: string, graceMs = 3000): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid || pid === process.ppid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
    if (cmd.split('\0').some((arg) => arg.includes(path)) || cwd === path || cwd.startsWith(`${path}/`)) found.push(pid);
  }
  const signal = (pid: number, s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
      return true;
    } catch {
      return false;
    }
  };
  for (const pid of found) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && found.some((p) => signal(p, 0 as unknown as NodeJS.Signals)))
    await new Promise((r) => setTimeout(r, 100));
  for (const pid of found) signal(pid, 'SIGKILL');
  return found;
}
