#!/usr/bin/env node
// Cargo's runner for the wasm32 test binaries (.cargo/config.toml): the wasm-bindgen-test
// suites in headless Chromium, driven through playwright-core, with the files served by
// `wasm-bindgen-test-runner` in its interactive mode behind a proxy that forwards one request
// at a time, each on a connection of its own.
//
// Why not the runner's own headless mode: its HTTP server (rouille over tiny_http 0.12) stops
// reading new connections while Chromium holds several keep-alive ones open, and on a loaded
// 2-core machine the page then waits forever for one of its JS snippets (tests/support/jose.js
// most often): the suite never starts and ChromeDriver gives up after 300 s ("Loading
// scripts..."). Measured before this runner: 20 of 25 runs of tests/browser.rs stalled that way
// with three CPU hogs beside them; with it, none of 13 runs with two hogs did (README
// "Decisions and departures from the architecture").
//
// Usage (cargo passes it): wasm-runner.mjs <test.wasm> [libtest args...]
// Environment: WASM_TEST_STALL_SECS (default 120): fail, with diagnostics, when the page adds no
// output for that long; WASM_TEST_SUITE_SECS (default 900): the bound on a whole suite.
import { spawn } from "node:child_process";
import http from "node:http";
import { launchBrowser } from "../tests/e2e/helpers/browser.mjs";

const [wasm, ...args] = process.argv.slice(2);
if (!wasm) {
  console.error("usage: wasm-runner.mjs <test.wasm> [args...]");
  process.exit(2);
}
const STALL_MS = Number(process.env.WASM_TEST_STALL_SECS || 120) * 1000;
const SUITE_MS = Number(process.env.WASM_TEST_SUITE_SECS || 900) * 1000;

let runner;
let proxy;
let browser;
async function finish(code, message) {
  if (message) console.error(`wasm-runner: ${message}`);
  try {
    await browser?.close();
  } catch {
    // Already gone: nothing to close.
  }
  proxy?.close();
  if (runner && runner.exitCode === null) runner.kill("SIGKILL");
  process.exit(code);
}
process.on("SIGINT", () => finish(130, "interrupted"));
process.on("SIGTERM", () => finish(143, "terminated"));

// 1. The runner generates the bindings and serves them; port 0 picks a free loopback port and
// the runner prints the one it bound.
const upstream = await new Promise((resolve) => {
  runner = spawn("wasm-bindgen-test-runner", [wasm, ...args], {
    env: { ...process.env, NO_HEADLESS: "1", WASM_BINDGEN_TEST_ADDRESS: "127.0.0.1:0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  runner.stdout.on("data", (chunk) => {
    out += chunk;
    const m = /now available at http:\/\/(127\.0\.0\.1:\d+)/.exec(out);
    if (m) resolve(m[1]);
  });
  runner.on("exit", (code) => {
    // It ends on its own when there is nothing to serve ("no tests to run!") or on an error.
    if (!/now available at/.test(out)) {
      process.stdout.write(out);
      process.exit(code ?? 1);
    }
  });
});
const [upHost, upPort] = upstream.split(":");

// 2. The proxy: Chromium may open as many connections as it likes; the runner sees one at a time.
let chain = Promise.resolve();
proxy = http.createServer((req, res) => {
  chain = chain.then(
    () =>
      new Promise((done) => {
        const headers = { ...req.headers, connection: "close" };
        const up = http.request(
          { host: upHost, port: Number(upPort), method: req.method, path: req.url, headers, agent: false },
          (upRes) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
            upRes.on("end", done);
            upRes.on("error", done);
          },
        );
        up.on("error", (e) => {
          res.writeHead(502).end(String(e.message));
          done();
        });
        req.pipe(up);
      }),
  );
});
await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${proxy.address().port}/`;

// 3. Chromium, headless, off the network this machine does not have: the e2e suite's launch.
browser = await launchBrowser();
const page = await browser.newPage();
const consoleLines = [];
page.on("console", (m) => {
  consoleLines.push(`${m.type()}: ${m.text()}`);
  if (consoleLines.length > 100) consoleLines.shift();
});
page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
const pending = new Map();
page.on("request", (r) => pending.set(r, Date.now()));
page.on("requestfinished", (r) => pending.delete(r));
page.on("requestfailed", (r) => pending.delete(r));
await page.goto(url, { waitUntil: "commit" });

// 4. Stream #output until the harness prints its summary.
const started = Date.now();
let printed = 0;
let lastChange = Date.now();
let text = "";
const diagnostics = () => {
  const lines = [`no new output for ${Math.round((Date.now() - lastChange) / 1000)} s`];
  for (const [r, t] of pending) lines.push(`  pending: ${r.method()} ${r.url()} (${Math.round((Date.now() - t) / 1000)} s)`);
  for (const l of consoleLines.slice(-30)) lines.push(`  console ${l}`);
  return lines.join("\n");
};
for (;;) {
  let timer;
  const read = await Promise.race([
    page.evaluate(() => document.getElementById("output")?.textContent ?? ""),
    new Promise((r) => (timer = setTimeout(() => r(null), STALL_MS))),
  ]);
  clearTimeout(timer);
  if (read === null) await finish(1, `the page stopped answering: ${diagnostics()}`);
  text = read;
  if (text.length > printed) {
    process.stdout.write(text.slice(printed));
    printed = text.length;
    lastChange = Date.now();
  }
  if (text.includes("test result: ")) break;
  if (Date.now() - lastChange > STALL_MS) await finish(1, diagnostics());
  if (Date.now() - started > SUITE_MS) await finish(1, `the suite ran past ${SUITE_MS / 1000} s: ${diagnostics()}`);
  await new Promise((r) => setTimeout(r, 100));
}
process.stdout.write("\n");
if (!text.includes("test result: ok")) {
  for (const l of consoleLines) console.log(`console ${l}`);
  await finish(1);
}
await finish(0);
