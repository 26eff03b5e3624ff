// Slow-client exhaustion, measured: the server binary runs with a lowered file descriptor
// limit (`ulimit -n`), SLOW connections each send a login's headers and the first byte of a
// 1000-byte body and then nothing, and a legitimate client asks for the JWKS on a fresh
// connection. Prints a Markdown table: did the JWKS answer, how fast, and how many of the
// slow connections the server still holds. Loopback only; every wait is bounded.
//
//   node bench/server/slow-clients.mjs [--binary PATH] [--label NAME] [--fd-limit 256]
//                                      [--slow 300] [--wait-ms 15000] [-- SERVER FLAGS…]
//
// Default binary: target/server-release/token-manager-server (bench/server/run-slow-clients.sh
// builds it). Run it once against a build of an older commit with --binary to compare.

import { spawn } from "node:child_process";
import net from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const argv = process.argv.slice(2);
const dash = argv.indexOf("--");
const own = dash < 0 ? argv : argv.slice(0, dash);
const serverFlags = dash < 0 ? [] : argv.slice(dash + 1);
const opt = (name, fallback) => {
  const i = own.indexOf(name);
  return i < 0 ? fallback : own[i + 1];
};
const binary = opt("--binary", join(ROOT, "target/server-release/token-manager-server"));
const label = opt("--label", "this build");
const fdLimit = Number(opt("--fd-limit", "256"));
const slowCount = Number(opt("--slow", "300"));
const waitMs = Number(opt("--wait-ms", "15000"));

function startServer() {
  // The limit is lowered for the server alone, in a shell that then execs it.
  const child = spawn(
    "sh",
    ["-c", `ulimit -n ${fdLimit} && exec "$0" "$@"`, binary, "--listen", "127.0.0.1:0", "--alg", "ES256", ...serverFlags],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stderr.on("data", (c) => (log += c));
  return new Promise((ready, fail) => {
    const timer = setTimeout(() => fail(new Error("the server did not start in 30 s")), 30_000);
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ready({ child, port: Number(m[1]), log: () => log });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`the server exited (${code}): ${log}`));
    });
  });
}

function slowConnection(port) {
  return new Promise((done) => {
    const socket = net.connect(port, "127.0.0.1");
    const state = { socket, closed: false };
    socket.on("error", () => (state.closed = true));
    socket.on("close", () => (state.closed = true));
    socket.on("data", () => {});
    socket.once("connect", () => {
      socket.write(
        `POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
          `Content-Length: 1000\r\n\r\n{`,
      );
      done(state);
    });
    // A connection the server never accepts still counts as open (it waits in the backlog).
    setTimeout(() => done(state), 2000);
  });
}

function jwks(port) {
  return new Promise((done) => {
    const started = performance.now();
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    const finish = (outcome) => {
      clearTimeout(timer);
      socket.destroy();
      done({ outcome, ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish("no answer"), waitMs);
    socket.once("connect", () =>
      socket.write("GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    );
    socket.on("data", (c) => {
      text += c;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m && text.includes("\r\n\r\n")) finish(m[1]);
    });
    socket.on("error", (e) => finish(`error (${e.code})`));
    socket.on("close", () => finish(text ? text.slice(0, 12) : "closed unanswered"));
  });
}

const server = await startServer();
const slow = [];
for (let i = 0; i < slowCount; i++) slow.push(await slowConnection(server.port));
const result = await jwks(server.port);
const held = slow.filter((s) => !s.closed).length;
const alive = server.child.exitCode === null;
for (const s of slow) s.socket.destroy();
server.child.kill("SIGTERM");

const answered = /^2\d\d$/.test(result.outcome);
console.log(`| server | fd limit | slow connections | JWKS answered | JWKS outcome | time | slow connections still open | server alive |`);
console.log(`|---|---:|---:|---|---|---:|---:|---|`);
console.log(
  `| ${label} | ${fdLimit} | ${slowCount} | ${answered ? "yes" : "**no**"} | ${result.outcome} | ` +
    `${result.ms.toFixed(0)} ms | ${held} | ${alive ? "yes" : "no"} |`,
);
