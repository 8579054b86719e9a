import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';

describe('configuration', () => {
  it('a bad value stops start-up with exit 78 and names the variable', async () => {
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const child = spawn(process.execPath, [main], {
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: 'mysql://nope',
        REDIS_URL: 'redis://127.0.0.1:1',
        JWT_SECRET: 'short',
        PORT: 'eighty',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(78);
    expect(err).toContain('DATABASE_URL: must be a postgres:// URL');
    expect(err).toContain('JWT_SECRET: must be at least 32 characters');
    expect(err).toMatch(/PORT: .*eighty/);
    expect(err).not.toContain('    at '); // no stack trace
  });

  it('the statement timeout must be shorter than the request deadline', () => {
    const base = { DATABASE_URL: 'postgres://x', REDIS_URL: 'redis://x', JWT_SECRET: 'y'.repeat(32) };
    expect(loadConfig(base).REQUEST_DEADLINE_MS).toBe(5000);
    expect(loadConfig(base).DB_STATEMENT_TIMEOUT_MS).toBeLessThan(5000);
    expect(() => loadConfig({ ...base, REQUEST_DEADLINE_MS: '3000', DB_STATEMENT_TIMEOUT_MS: '3000' })).toThrow(
      'DB_STATEMENT_TIMEOUT_MS: must be shorter than REQUEST_DEADLINE_MS',
    );
  });
});
