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
//   mint-on-replay       the naive rotation README warns about: a rotated cookie presented again
//                        is exchanged for the head of its chain, which is rotated once more, so
//                        every replay mints another cookie and none is ever detected as reuse
//                        (refreshes go through one at a time, so concurrent ones race the same way
//                        every run)
//
// Usage: node broken-proxy.mjs TARGET_URL FAULT[,FAULT…]   prints "listening on http://127.0.0.1:PORT".

import { createServer, request } from "node:http";

const FAULTS = ["csrf-header", "no-httponly", "reflect-origin", "no-retry-after", "no-www-authenticate", "echo-credentials", "mint-on-replay"];
const target = new URL(process.argv[2]);
const faults = new Set((process.argv[3] ?? "").split(",").filter(Boolean));
for (const f of faults) {
  if (!FAULTS.includes(f)) {
    process.stderr.write(`broken-proxy: unknown fault ${f}; known: ${FAULTS.join(", ")}\n`);
    process.exit(2);
  }
}
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"];
const COOKIE = "__Host-refresh";

/** mint-on-replay: each refresh cookie the backend rotated → the cookie it answered. */
const successor = new Map();
let refreshQueue = Promise.resolve();

function reflect(headers, origin) {
  if (!origin) return;
  headers["access-control-allow-origin"] = origin;
  headers["access-control-allow-credentials"] = "true";
}

function cookieValue(header) {
  const m = new RegExp(`(?:^|;\\s*)${COOKIE}=([^;]*)`).exec(header ?? "");
  return m?.[1];
}

/** Sends one request upstream; resolves with its status, headers and whole body. */
function forward(method, path, headers, body) {
  return new Promise((done, fail) => {
    const upstream = request({ host: target.hostname, port: target.port, method, path, headers }, (answer) => {
      const parts = [];
      answer.on("data", (c) => parts.push(c));
      answer.on("end", () => done({ status: answer.statusCode, headers: { ...answer.headers }, body: Buffer.concat(parts) }));
      answer.on("error", fail);
    });
    upstream.on("error", fail);
    upstream.end(body);
  });
}

async function mintOnReplay(method, path, headers, body) {
  const presented = cookieValue(headers.cookie);
  let head = presented;
  while (successor.has(head)) head = successor.get(head);
  if (head !== presented) headers = { ...headers, cookie: `${COOKIE}=${head}` };
  const answer = await forward(method, path, headers, body);
  const issued = cookieValue((answer.headers["set-cookie"] ?? []).find((c) => c.startsWith(`${COOKIE}=`)));
  if (answer.status === 200 && head && issued && issued !== head) successor.set(head, issued);
  return answer;
}

async function handle(incoming, body) {
  const origin = incoming.headers.origin;
  if (faults.has("reflect-origin") && incoming.method === "OPTIONS" && incoming.headers["access-control-request-method"]) {
    const headers = { "access-control-allow-methods": "GET, POST, OPTIONS" };
    if (incoming.headers["access-control-request-headers"]) headers["access-control-allow-headers"] = incoming.headers["access-control-request-headers"];
    reflect(headers, origin);
    return { status: 204, headers, body: Buffer.alloc(0) };
  }
  const headers = { ...incoming.headers, host: target.host };
  if (faults.has("csrf-header")) headers["x-requested-with"] = "wasm-token-manager";
  for (const h of HOP_BY_HOP) delete headers[h];
  if (body.length || "content-length" in headers) headers["content-length"] = String(body.length);

  let answer;
  if (faults.has("mint-on-replay") && incoming.method === "POST" && incoming.url.endsWith("/auth/refresh")) {
    const turn = refreshQueue.then(() => mintOnReplay(incoming.method, incoming.url, headers, body));
    refreshQueue = turn.catch(() => {});
    answer = await turn;
  } else {
    answer = await forward(incoming.method, incoming.url, headers, body);
  }

  const out = answer.headers;
  for (const h of HOP_BY_HOP) delete out[h];
  if (faults.has("no-httponly") && out["set-cookie"]) out["set-cookie"] = out["set-cookie"].map((c) => c.replace(/;\s*HttpOnly/gi, ""));
  if (faults.has("reflect-origin")) reflect(out, origin);
  if (faults.has("no-retry-after")) delete out["retry-after"];
  if (faults.has("no-www-authenticate")) delete out["www-authenticate"];
  let payload = answer.body;
  if (faults.has("echo-credentials") && incoming.url.endsWith("/auth/login") && answer.status >= 400) {
    const error = JSON.parse(payload.toString("utf8"));
    error.error_description = `refused ${body.toString("utf8")}`;
    payload = Buffer.from(JSON.stringify(error));
  }
  if (answer.status !== 204 && answer.status !== 304) out["content-length"] = String(payload.length);
  return { status: answer.status, headers: out, body: payload };
}

const server = createServer((incoming, outgoing) => {
  const chunks = [];
  incoming.on("data", (c) => chunks.push(c));
  incoming.on("end", () => {
    handle(incoming, Buffer.concat(chunks)).then(
      ({ status, headers, body }) => outgoing.writeHead(status, headers).end(body),
      () => {
        outgoing.writeHead(502, { "content-type": "application/json" });
        outgoing.end('{"error":"server_error","error_description":"proxy: upstream failed"}');
      },
    );
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`);
});
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
