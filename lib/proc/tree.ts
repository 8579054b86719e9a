import { readdirSync, readFileSync } from 'node:fs';

/** Parent pid of every process now running, from /proc (Linux only; no `ps`, which a minimal Debian lacks). */
function parentsByPid(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name, which is in parentheses and may contain spaces.
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* the process ended while we looked */
    }
  }
  return parents;
}

/** Pids of the processes whose parent is `parent`. */
export function childPids(parent: number): number[] {
  return [...parentsByPid()].filter(([, ppid]) => ppid === parent).map(([pid]) => pid);
}

/** Pids of `root`'s children, their children and so on (not `root`), parents before their children. */
export function descendantPids(root: number): number[] {
  const parents = parentsByPid();
  const out: number[] = [];
  for (let i = -1; i < out.length; i++) {
    const parent = i < 0 ? root : out[i];
    for (const [pid, ppid] of parents) if (ppid === parent && pid !== root && !out.includes(pid)) out.push(pid);
  }
  return out;
}

/**
 * Sends `signal` to `root` and every process under it, the whole tree listed before the first
 * signal (a child whose parent dies is re-parented and could no longer be found). Processes that
 * are already gone are skipped. Returns the pids signalled.
 */
export function signalTree(root: number, signal: NodeJS.Signals): number[] {
  const pids = [root, ...descendantPids(root)];
  return pids.filter((pid) => {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether `pid` runs (a zombie, ended and waiting for its parent to read its status, does not). */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Stops `root` and everything under it: SIGTERM to the whole tree, SIGKILL after `graceMs` to
 * what still runs; resolves once none of them runs (or, a process that ignores SIGKILL in the
 * kernel, 2 s after that).
 */
export async function stopTree(root: number, graceMs = 5000): Promise<void> {
  const pids = signalTree(root, 'SIGTERM');
  const waitFor = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (pids.some(running) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  };
  await waitFor(graceMs);
  for (const pid of pids.filter(running)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  await waitFor(2000);
}
