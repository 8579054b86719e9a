import type { ImageStore } from '../image-store.ts';

/**
 * Small images for the node agent's tests. Each is a node:http server on $HOST:$PORT that answers
 * with its pod name, with one behaviour the test needs. Marks go to $MARK_DIR (world-writable).
 */
const server = (behaviour: string) => `
import { createServer } from 'node:http';
import { appendFileSync, existsSync } from 'node:fs';
const pod = process.env.POD_NAME ?? 'unknown';
const mark = (what) => { if (process.env.MARK_DIR) appendFileSync(process.env.MARK_DIR + '/' + pod + '.log', what + ' ' + Date.now() + '\\n'); };
const started = Date.now();
${behaviour}
const srv = createServer((req, res) => {
  const status = route(req.url);
  res.writeHead(status, { 'content-type': 'text/plain', 'x-served-by': pod });
  res.end(pod + '\\n');
});
srv.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '0.0.0.0', () => mark('listening'));
`;

export const TEST_IMAGES: Record<string, string> = {
  // Ignores SIGTERM entirely: only SIGKILL ends it (termination-sequence test).
  'term-ignorer:v1': server(`
process.on('SIGTERM', () => mark('SIGTERM'));
const route = () => 200;`),
  // Healthy for 2 s, then /live answers 500 (liveness restart test).
  'liveness-flipper:v1': server(`
process.on('SIGTERM', () => process.exit(0));
const route = (url) => (url === '/live' && Date.now() - started > 2000 ? 500 : 200);`),
  // /ready answers 503 while $MARK_DIR/<pod>.unready exists (readiness → endpoints → proxy test).
  'ready-switch:v1': server(`
process.on('SIGTERM', () => process.exit(0));
const route = (url) => (url === '/ready' && existsSync(process.env.MARK_DIR + '/' + pod + '.unready') ? 503 : 200);`),
};

export async function addTestImages(images: ImageStore): Promise<void> {
  for (const [ref, code] of Object.entries(TEST_IMAGES)) await images.addFiles(ref, ['node', 'main.mjs'], { 'main.mjs': code });
}
