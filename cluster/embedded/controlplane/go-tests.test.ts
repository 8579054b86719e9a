import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

/**
 * Runs the control plane's Go unit tests (PKI reuse/reissue, kubeconfig) inside the suite, so they
 * count in the same report as everything else. `-trimpath` matches build.sh: without it Go would
 * rebuild all of Kubernetes under a different cache key.
 */
it('the control plane Go unit tests pass (go test -trimpath ./...)', async () => {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const { code, out } = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile(
      'go',
      ['test', '-trimpath', '-count=1', '-json', './...'],
      { cwd: dir, maxBuffer: 64 * 1024 * 1024, timeout: 1_500_000 },
      (err, stdout, stderr) => {
        resolve({
          code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0,
          out: stdout + stderr,
        });
      },
    );
  });
  const events = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { Action: string; Test?: string; Output?: string });
  const passed = events.filter((e) => e.Action === 'pass' && e.Test).map((e) => e.Test);
  const failed = events.filter((e) => e.Action === 'fail' && e.Test).map((e) => e.Test);
  expect(failed, out.slice(-3000)).toEqual([]);
  expect(code, out.slice(-3000)).toBe(0);
  expect(passed.length).toBeGreaterThan(0);
}, 1_600_000);
