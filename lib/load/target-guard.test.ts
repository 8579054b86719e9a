import { describe, expect, it } from 'vitest';
import { startLoad } from './engine.ts';
import { checkRemoteLoad, isLoopback, TargetNotAllowedError, vetTarget } from './target-guard.ts';

// These tests never send traffic anywhere but loopback: vetting an address literal does not connect,
// and a refused plan is refused before any connection is opened.

describe('vetTarget', () => {
  it('accepts loopback in all its spellings and pins the address', async () => {
    expect(await vetTarget('http://127.0.0.1:8080/x')).toMatchObject({
      kind: 'loopback',
      address: '127.0.0.1',
      origin: 'http://127.0.0.1:8080',
    });
    expect(await vetTarget('http://127.3.4.5/')).toMatchObject({ kind: 'loopback', origin: 'http://127.3.4.5:80' });
    expect(await vetTarget('http://[::1]:9000/')).toMatchObject({
      kind: 'loopback',
      address: '::1',
      origin: 'http://[::1]:9000',
    });
    const named = await vetTarget('https://localhost:8443/');
    expect(named.kind).toBe('loopback');
    expect(named.hostHeader).toBe('localhost:8443');
    expect(named.servername).toBe('localhost');
    expect(isLoopback('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopback('128.0.0.1')).toBe(false);
  });

  it('refuses other addresses unless remote load is asked for', async () => {
    for (const url of [
      'http://10.1.2.3/',
      'http://192.0.2.7:8080/',
      'http://[2001:db8::1]/',
      'http://0.0.0.0:8080/',
      'http://169.254.169.254/',
    ]) {
      await expect(vetTarget(url), url).rejects.toThrow(/neither loopback nor a network the harness created.*--allow-remote/);
    }
    expect(await vetTarget('http://192.0.2.7/', { allowRemote: true })).toMatchObject({ kind: 'remote', address: '192.0.2.7' });
  });

  it('accepts networks the harness created, and only private ones', async () => {
    expect(await vetTarget('http://10.244.1.5:8080/', { harnessNetworks: ['10.244.0.0/16'] })).toMatchObject({
      kind: 'harness-network',
    });
    await expect(vetTarget('http://10.245.1.5:8080/', { harnessNetworks: ['10.244.0.0/16'] })).rejects.toThrow(
      TargetNotAllowedError,
    );
    await expect(vetTarget('http://8.8.8.8/', { harnessNetworks: ['8.8.8.0/24'] })).rejects.toThrow(/not inside a private range/);
    await expect(vetTarget('http://10.1.1.1/', { harnessNetworks: ['0.0.0.0/0'] })).rejects.toThrow(/not inside a private range/);
  });

  it('refuses non-HTTP schemes and credentials in the URL', async () => {
    await expect(vetTarget('ftp://127.0.0.1/')).rejects.toThrow(/use an http/);
    await expect(vetTarget('http://u:p@127.0.0.1/')).rejects.toThrow(/credentials/);
    await expect(vetTarget('not a url')).rejects.toThrow(/not a URL/);
  });
});

describe('remote load plans', () => {
  it('caps the rate and refuses the closed model', async () => {
    const remote = await vetTarget('http://192.0.2.7/', { allowRemote: true });
    expect(() => checkRemoteLoad(remote, { model: 'open', peakRate: 10 })).not.toThrow();
    expect(() => checkRemoteLoad(remote, { model: 'open', peakRate: 11 })).toThrow(/capped at 10\/s/);
    expect(() => checkRemoteLoad(remote, { model: 'open', peakRate: 50 }, { remoteRateCap: 50 })).not.toThrow();
    expect(() => checkRemoteLoad(remote, { model: 'closed' })).toThrow(/virtual-user executors have no rate bound/);
  });

  it('startLoad refuses before opening any connection', async () => {
    const executor = { executor: 'constant-arrival-rate' as const, rate: 500, duration: '1s' };
    await expect(startLoad({ url: 'http://192.0.2.7/', executor })).rejects.toThrow(/--allow-remote/);
    await expect(startLoad({ url: 'http://192.0.2.7/', executor, target: { allowRemote: true } })).rejects.toThrow(
      /capped at 10\/s/,
    );
    await expect(
      startLoad({
        url: 'http://192.0.2.7/',
        executor: { executor: 'constant-vus', vus: 1, duration: '1s' },
        target: { allowRemote: true },
      }),
    ).rejects.toThrow(/no rate bound/);
  });
});
