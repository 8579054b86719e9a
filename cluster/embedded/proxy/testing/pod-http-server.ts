/**
 * The smallest HTTP backend for proxy tests and the network benchmark, meant to run inside a pod
 * namespace: `node pod-http-server.ts <host> <port> <name>`. Answers every request with its name
 * (body and X-Served-By), keep-alive; prints "listening" once bound; exits 0 on SIGTERM.
 */
import { createServer } from 'node:http';

const [host, port, name] = process.argv.slice(2);
if (!host || !port || !name) {
  console.error('usage: pod-http-server.ts <host> <port> <name>');
  process.exit(64);
}
const body = Buffer.from(name);
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-served-by': name });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(port), host, () => console.log('listening'));
process.once('SIGTERM', () => process.exit(0));
