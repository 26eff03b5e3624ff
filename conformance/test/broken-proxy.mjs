// Deliberately broken deployments for the kit's own test: a reverse proxy in front of the
// reference server that adds the faults named on its command line. The reference server itself
// stays unweakened; the kit must name exactly the checks these faults break. Not part of the
// published package.
//
//   csrf-header          adds `X-Requested-With: wasm-token-manager` to every request, which
//                        disables the backend's CSRF header check
//   no-httponly          strips `HttpOnly` from every `Set-Cookie`: scripts can read the cookie
//   reflect-origin       the classic CORS mistake: grants every preflight and every answer to
//                        whatever `Origin` asked, with credentials
//   no-retry-after       drops `Retry-After`
//   no-www-authenticate  drops `WWW-Authenticate`
//   echo-credentials     a refused login's error_description repeats the request body, password
//                        and all (the kit must not print it)
//
// Usage: node broken-proxy.mjs TARGET_URL FAULT[,FAULT…]   prints "listening on http://127.0.0.1:PORT".

import { createServer, request } from "node:http";

const FAULTS = ["csrf-header", "no-httponly", "reflect-origin", "no-retry-after", "no-www-authenticate", "echo-credentials"];
const target = new URL(process.argv[2]);
const faults = new Set((process.argv[3] ?? "").split(",").filter(Boolean));
for (const f of faults) {
  if (!FAULTS.includes(f)) {
    process.stderr.write(`broken-proxy: unknown fault ${f}; known: ${FAULTS.join(", ")}\n`);
    process.exit(2);
  }
}
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"];

function reflect(headers, origin) {
  if (!origin) return;
  headers["access-control-allow-origin"] = origin;
  headers["access-control-allow-credentials"] = "true";
}

const server = createServer((incoming, outgoing) => {
  const origin = incoming.headers.origin;
  if (faults.has("reflect-origin") && incoming.method === "OPTIONS" && incoming.headers["access-control-request-method"]) {
    const headers = { "access-control-allow-methods": "GET, POST, OPTIONS" };
    if (incoming.headers["access-control-request-headers"]) headers["access-control-allow-headers"] = incoming.headers["access-control-request-headers"];
    reflect(headers, origin);
    outgoing.writeHead(204, headers).end();
    incoming.resume();
    return;
  }
  const headers = { ...incoming.headers, host: target.host };
  if (faults.has("csrf-header")) headers["x-requested-with"] = "wasm-token-manager";
  for (const h of HOP_BY_HOP) delete headers[h];
  const chunks = [];
  incoming.on("data", (c) => chunks.push(c));
  incoming.on("end", () => {
    const body = Buffer.concat(chunks);
    if (body.length || "content-length" in headers) headers["content-length"] = String(body.length);
    const upstream = request(
      { host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers },
      (answer) => {
        const out = { ...answer.headers };
        for (const h of HOP_BY_HOP) delete out[h];
        if (faults.has("no-httponly") && out["set-cookie"]) out["set-cookie"] = out["set-cookie"].map((c) => c.replace(/;\s*HttpOnly/gi, ""));
        if (faults.has("reflect-origin")) reflect(out, origin);
        if (faults.has("no-retry-after")) delete out["retry-after"];
        if (faults.has("no-www-authenticate")) delete out["www-authenticate"];
        const parts = [];
        answer.on("data", (c) => parts.push(c));
        answer.on("end", () => {
          let payload = Buffer.concat(parts);
          if (faults.has("echo-credentials") && incoming.url.endsWith("/auth/login") && answer.statusCode >= 400) {
            const error = JSON.parse(payload.toString("utf8"));
            error.error_description = `refused ${body.toString("utf8")}`;
            payload = Buffer.from(JSON.stringify(error));
          }
          out["content-length"] = String(payload.length);
          outgoing.writeHead(answer.statusCode, out);
          outgoing.end(payload);
        });
      },
    );
    upstream.on("error", () => {
      outgoing.writeHead(502, { "content-type": "application/json" });
      outgoing.end('{"error":"server_error","error_description":"proxy: upstream failed"}');
    });
    upstream.end(body);
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`);
});
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
