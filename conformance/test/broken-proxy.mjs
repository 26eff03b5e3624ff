// A deliberately broken deployment for the kit's own test: a reverse proxy in front of the
// reference server that (1) adds `X-Requested-With: wasm-token-manager` to every request, which
// disables the backend's CSRF header check, and (2) strips `HttpOnly` from every `Set-Cookie`,
// which lets page scripts read the refresh cookie. The reference server stays unweakened; the
// kit must name exactly these faults. Not part of the published package.
//
// Usage: node broken-proxy.mjs TARGET_URL   prints "listening on http://127.0.0.1:PORT".

import { createServer, request } from "node:http";

const target = new URL(process.argv[2]);
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"];

const server = createServer((incoming, outgoing) => {
  const headers = { ...incoming.headers, host: target.host, "x-requested-with": "wasm-token-manager" };
  for (const h of HOP_BY_HOP) delete headers[h];
  const upstream = request(
    { host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers },
    (answer) => {
      const out = { ...answer.headers };
      for (const h of HOP_BY_HOP) delete out[h];
      if (out["set-cookie"]) out["set-cookie"] = out["set-cookie"].map((c) => c.replace(/;\s*HttpOnly/gi, ""));
      outgoing.writeHead(answer.statusCode, out);
      answer.pipe(outgoing);
    },
  );
  upstream.on("error", () => {
    outgoing.writeHead(502, { "content-type": "application/json" });
    outgoing.end('{"error":"server_error","error_description":"proxy: upstream failed"}');
  });
  incoming.pipe(upstream);
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`);
});
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
