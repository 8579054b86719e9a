import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The Dockerfile's structure, without an engine (license-api/container.test.ts builds and runs it
 * with a real one).
 */
interface Instruction {
  op: string;
  args: string;
  stage: number;
}

function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  const joined = text.replace(/\\\r?\n/g, ' ');
  for (const raw of joined.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1].toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2], stage });
  }
  return out;
}

describe('Dockerfile', async () => {
  const text = await readFile(fileURLToPath(new URL('../Dockerfile', import.meta.url)), 'utf8');
  const ins = parseDockerfile(text);
  const last = Math.max(...ins.map((i) => i.stage));
  const final = ins.filter((i) => i.stage === last);

  it("is multi-stage on one base: the official Node 24 slim image pinned by digest, as a build argument's default", () => {
    const froms = ins.filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const arg = ins.find((i) => i.op === 'ARG' && i.stage === -1 && i.args.startsWith('NODE_IMAGE='));
    expect(arg?.args).toMatch(/^NODE_IMAGE=node:24\.\d+\.\d+-[a-z]+-slim@sha256:[0-9a-f]{64}$/);
    for (const f of froms) expect(f.args).toMatch(/^\$\{NODE_IMAGE\} AS \w+$/);
  });

  it('has no `# syntax=` line (BuildKit would fetch a frontend image from a registry)', () => {
    expect(text).not.toMatch(/^#\s*syntax\s*=/m);
  });

  it('runs as a non-root numeric user in the final stage', () => {
    const user = final.filter((i) => i.op === 'USER').at(-1);
    expect(user?.args).toMatch(/^[1-9]\d*(:\d+)?$/);
  });

  it('ships only the bundle: no npm install, no source tree in the final stage', () => {
    expect(final.filter((i) => i.op === 'RUN')).toEqual([]);
    const copies = final.filter((i) => i.op === 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) expect(c.args).toMatch(/--from=/);
  });

  it('has a HEALTHCHECK against /health/ready', () => {
    expect(final.find((i) => i.op === 'HEALTHCHECK')?.args).toContain('/health/ready');
  });

  it('starts node directly (exec form), so the process receives SIGTERM itself', () => {
    const cmd = final.filter((i) => i.op === 'CMD' || i.op === 'ENTRYPOINT').at(-1)!;
    const argv = JSON.parse(cmd.args) as string[];
    expect(argv[0]).toBe('node');
    expect(argv.join(' ')).not.toMatch(/npm|yarn|sh -c/);
  });

  it('builds the bundle with the same script the image store uses', () => {
    expect(ins.some((i) => i.op === 'RUN' && i.args.includes('license-api/build.ts'))).toBe(true);
  });
});
