import { readFile, readdir, readlink } from 'node:fs/promises';

export interface Listener {
  pid: number;
  /** The process's command line, arguments joined by spaces, and its working directory. */
  cmd: string;
  cwd: string;
  /** The local address it listens on (IPv4 dotted or IPv6 as /proc/net/tcp6 writes it), and port. */
  address: string;
  port: number;
}

const hexToIPv4 = (h: string) => [6, 4, 2, 0].map((i) => parseInt(h.slice(i, i + 2), 16)).join('.'); // /proc/net/tcp: little-endian

/**
 * The processes listening on TCP `port` (any address), from /proc/net/tcp{,6} and each process's
 * socket descriptors (Linux only; as root every process is visible).
 */
export async function listenersOn(port: number): Promise<Listener[]> {
  const inodes = new Map<string, string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A: LISTEN
      const [addr, p] = f[1].split(':');
      if (parseInt(p, 16) !== port) continue;
      inodes.set(f[9], addr.length === 8 ? hexToIPv4(addr) : addr);
    }
  }
  if (inodes.size === 0) return [];
  const found: Listener[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (!m || !inodes.has(m[1])) continue;
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ').trim();
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
      found.push({ pid, cmd, cwd, address: inodes.get(m[1])!, port });
      break;
    }
  }
  return found;
}
