// tests/browser/relay.mjs — an HTTP/1.1 server that relays every request to a node's cleartext
// HTTP/2 (prior knowledge), for browsers, which speak HTTP/2 only over TLS. Used by run.mjs when
// the cluster has no https `web_url`, and by hand to look at the pages of a node without TLS:
//   node tests/browser/relay.mjs http://127.0.0.1:7302 [PORT]   → http://127.0.0.1:PORT/
// Loopback only. Bytes, status and headers pass unchanged, except HTTP/1.1 hop-by-hop headers.
import http from 'node:http';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings', 'te']);

/* Resolves to the listening http.Server; one HTTP/2 session to target, reopened when it closes. */
export function startRelay(target, port = 0) {
  let sess = null;
  const session = () => {
    if (!sess || sess.closed || sess.destroyed) {
      sess = http2.connect(target);
      sess.on('error', () => {});
    }
    return sess;
  };
  const server = http.createServer((req, res) => {
    const headers = { ':method': req.method, ':path': req.url };
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
    const bodyless = req.method === 'GET' || req.method === 'HEAD';
    const s = session().request(headers, { endStream: bodyless });
    if (!bodyless) req.pipe(s);
    s.on('response', (h) => {
      const out = {};
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') && !HOP.has(k)) out[k] = v;
      res.writeHead(h[':status'], out);
      s.pipe(res);
    });
    s.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(e));
    });
  });
  server.on('close', () => sess?.close());
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [target, port] = process.argv.slice(2);
  if (!target) {
    console.error('usage: node relay.mjs http://127.0.0.1:7302 [PORT]');
    process.exit(2);
  }
  const s = await startRelay(target, +(port || 0));
  console.log(`http://127.0.0.1:${s.address().port}/ → ${target}`);
}
