/**
 * A JSON Web Key Set served by this process, as an identity provider serves its signing keys: the
 * harness publishes the public keys of its own signing keys here and the app under test fetches
 * them (the key-rotation rehearsal). Every fetch is recorded with the address it came from, so the
 * harness sees which pod holds which key set. Listens on one address (the pod network's gateway on
 * the embedded cluster: pods reach it, nothing outside the machine does).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

export interface JwksFetch {
  /** Epoch ms. */
  at: number;
  /** The client's address (IPv4-mapped prefixes removed). */
  from: string;
  /** The key ids it was given. */
  kids: string[];
}

export interface JwksServer extends AsyncDisposable {
  /** The key set's URL (`http://<host>:<port>/jwks.json`). */
  readonly url: string;
  /** Serves these public keys from now on. */
  publish(keys: JWK[]): void;
  /** Every fetch of the set, oldest first. */
  readonly fetches: readonly JwksFetch[];
  close(): Promise<void>;
}

/** A signing key of the harness's issuer: its id, algorithm, private key and public JWK. */
export interface IssuerKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

/** A new signing key (ES256 by default) with its public JWK (`kid`, `alg`, `use: sig`). */
export async function newIssuerKey(kid: string, alg = 'ES256'): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const PATH = '/jwks.json';

/** Starts serving an empty key set on `host` (port `port`, or a free one). */
export async function startJwksServer(o: { host: string; port?: number }): Promise<JwksServer> {
  let keys: JWK[] = [];
  const fetches: JwksFetch[] = [];
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const from = (req.socket.remoteAddress ?? '').replace(/^::ffff:/i, '');
    fetches.push({ at: Date.now(), from, kids: keys.map((k) => String(k.kid)) });
    res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'no-store' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
  return {
    url: `http://${host}:${port}${PATH}`,
    publish(next) {
      keys = next.map((k) => ({ ...k }));
    },
    fetches,
    close,
    [Symbol.asyncDispose]: close,
  };
}
