// The React bindings as users meet them: `npm pack` of pkg/, installed from that tarball into
// examples/react-spa (Vite + React + strict TypeScript), type-checked, built and served by
// `vite preview` under the demo's Content-Security-Policy, proxying /auth and /api to the
// reference server. The build is React's development build (NODE_ENV=development), the one in
// which <StrictMode> mounts every component twice: the page must still create one manager and
// make one restore request. In Chromium: login → claims → /api/me through useAuthFetch, ky and
// axios → a silent refresh re-renders the claims → reload restores, and a request made on mount
// waits for it → logout. And the same app
// rendered on the server (Node) is the loading page, which the browser hydrates and restores.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createWriteStream, lstatSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

import { assertNoTokenExposed, nextLogoutAnswer, launchBrowser, newContext } from "./helpers/browser.mjs";
import { ARTIFACTS, DEMO_USER, ROOT, startServer } from "./helpers/server.mjs";
import { freePort } from "./helpers/ports.mjs";

const EXAMPLE = join(ROOT, "examples/react-spa");
const PKG = join(ROOT, "pkg");
const BIN = join(EXAMPLE, "node_modules/.bin");
// Long enough that the default refresh budget never throttles, short enough that a silent
// refresh (at most half the lifetime in) happens within the test.
const TTL = 6;
const DISPLAY_NAME = "Grace Hopper";
const ROLES = ["user", "admin"];
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const execFileAsync = promisify(execFile);
const timings = [];

/** Runs a command to completion; a failure carries its output. */
async function run(file, args, options = {}) {
  const started = Date.now();
  try {
    const { stdout } = await execFileAsync(file, args, { maxBuffer: 16 << 20, ...options });
    return stdout;
  } catch (error) {
    throw new Error(`${[file, ...args].join(" ")} failed:\n${error.stdout ?? ""}${error.stderr ?? ""}`);
  } finally {
    timings.push(`${basename(file)} ${args[0]}: ${Date.now() - started} ms`);
  }
}

/** `vite preview` of `dist` on `port`, proxying to `target`; resolves once it answers. */
async function startPreview({ dist, port, target }) {
  const log = createWriteStream(join(ARTIFACTS, "vite-preview-react.log"));
  const child = spawn(
    join(BIN, "vite"),
    ["preview", "--outDir", dist, "--host", "127.0.0.1", "--port", String(port), "--strictPort"],
    { cwd: EXAMPLE, env: { ...process.env, TOKEN_SERVER: target }, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise((done) => child.once("exit", (code, signal) => done(code ?? signal)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + 30_000;
  let early = null;
  exited.then((status) => (early = status));
  while (Date.now() < deadline) {
    if (early !== null) throw new Error(`vite preview exited (${early}); see tests/e2e/artifacts/vite-preview-react.log`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/`)).ok) return { stop };
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error("vite preview did not answer within 30 s");
}

// Before any page script: counts the managers the page creates (each opens one
// BroadcastChannel named after its refresh endpoint) and records CSP violations.
const WATCH = () => {
  if (!location.protocol.startsWith("http")) return;
  const watch = { channels: 0, csp: [] };
  Object.defineProperty(window, "__reactWatch", { value: watch });
  const Native = window.BroadcastChannel;
  window.BroadcastChannel = class extends Native {
    constructor(name) {
      super(name);
      if (String(name).startsWith("wasm-token-manager:")) watch.channels += 1;
    }
  };
  document.addEventListener("securitypolicyviolation", (e) => watch.csp.push(`${e.violatedDirective} ${e.blockedURI}`));
};

let work;
let dist;
let server;
let preview;
let browser;
let base;

before(
  async () => {
    for (const file of ["package.json", "wasm_token_manager.js", "wasm_token_manager_bg.wasm", "react/index.js"]) {
      try {
        lstatSync(join(PKG, file));
      } catch {
        throw new Error(`pkg/${file} is missing: run npm run build (scripts/e2e.sh builds it)`);
      }
    }
    work = await mkdtemp(join(tmpdir(), "wtm-react-"));
    dist = join(work, "dist");
    browser = await launchBrowser();

    const packed = await run("npm", ["pack", "--pack-destination", work, "--loglevel=error"], { cwd: PKG });
    const tarball = join(work, packed.trim().split("\n").pop());
    // As in spa.test.mjs: the committed lockfile pins React, ky, axios and the tooling;
    // --no-save adds the tarball without rewriting it.
    await run(
      "npm",
      ["install", "--no-save", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarball],
      { cwd: EXAMPLE },
    );
    await run(join(BIN, "tsc"), ["--noEmit", "-p", "tsconfig.json"], { cwd: EXAMPLE });
    await run(join(BIN, "tsc"), ["--noEmit", "-p", "tsconfig.node.json"], { cwd: EXAMPLE });
    const development = { ...process.env, NODE_ENV: "development" };
    await run(join(BIN, "vite"), ["build", "--outDir", dist, "--emptyOutDir", "--logLevel", "error"], { cwd: EXAMPLE, env: development });
    // Server-side rendering: the same tree rendered in Node into dist/ssr.html, which the
    // browser entry hydrates.
    const ssr = join(work, "ssr");
    await run(join(BIN, "vite"), ["build", "--ssr", "src/entry-server.tsx", "--outDir", ssr, "--emptyOutDir", "--logLevel", "error"], {
      cwd: EXAMPLE,
      env: development,
    });
    const { render } = await import(pathToFileURL(join(ssr, "entry-server.js")).href);
    const page = readFileSync(join(dist, "index.html"), "utf8");
    assert.ok(page.includes('<div id="root"></div>'), "index.html has an empty #root");
    writeFileSync(join(dist, "ssr.html"), page.replace('<div id="root"></div>', `<div id="root">${render()}</div>`));

    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      base = `http://localhost:${port}`;
      server = await startServer({
        name: "react-spa",
        accessTtl: TTL,
        args: [
          "--allowed-origin", base,
          "--demo-user", `${DEMO_USER.username}:${DEMO_USER.password}:${DISPLAY_NAME}:${ROLES.join(",")}`,
        ],
      });
      try {
        preview = await startPreview({ dist, port, target: `http://127.0.0.1:${server.port}` });
        break;
      } catch (error) {
        await server.stop();
        server = undefined;
        if (attempt === 3) throw error;
      }
    }
  },
  { timeout: 240_000 },
);

after(async () => {
  await browser?.close();
  await preview?.stop();
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
  if (timings.length) console.log(`react-spa: ${timings.join(", ")}`);
});

test("the React example runs the packed tarball's ./react entry, not a link to pkg/", () => {
  const installed = join(EXAMPLE, "node_modules/wasm-token-manager");
  assert.ok(!lstatSync(installed).isSymbolicLink(), "node_modules/wasm-token-manager is a copy, not a link");
  for (const file of ["react/index.js", "react/index.d.ts", "wasm_token_manager.js", "wasm_token_manager_bg.wasm"]) {
    assert.ok(readFileSync(join(installed, file)).equals(readFileSync(join(PKG, file))), `${file} is the one in pkg/`);
  }
});

test("under StrictMode and the CSP: one manager and one restore per load; login → claims → API via useAuthFetch, ky and axios → refresh → reload → logout", { timeout: 60_000 }, async (t) => {
  const context = await newContext(browser);
  t.after(() => context.close());
  await context.addInitScript(WATCH);
  const page = await context.newPage();
  const apiAuthorization = [];
  let documentCsp;
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (path === "/api/me") apiAuthorization.push(r.headers().authorization ?? "");
  });
  page.on("response", (r) => {
    if (r.request().resourceType() === "document") documentCsp = r.headers()["content-security-policy"];
  });
  const ready = () => page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
  const text = (selector) => page.locator(selector).innerText();
  const watch = () => page.evaluate(() => ({ ...window.__reactWatch, mounts: Number(document.body.dataset.mounts) }));
  const refreshRequests = async () => (await server.stats()).refresh_requests;
  const callApi = async (button, how) => {
    const before = apiAuthorization.length;
    await page.click(button);
    await page.waitForSelector(`#api-result:has-text('${how} 200')`, { timeout: 10_000 });
    const result = await text("#api-result");
    const me = JSON.parse(result.slice(result.indexOf("{")));
    assert.equal(me.sub, DEMO_USER.username, how);
    assert.equal(me.name, DISPLAY_NAME, how);
    assert.equal(apiAuthorization.length, before + 1, `${how}: one request`);
    assert.match(apiAuthorization.at(-1), /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, `${how}: the token attached`);
  };

  try {
    // First load, no session: StrictMode mounted the tree twice, yet one manager made one
    // restore request (counted at the server) that found nothing.
    await page.goto(base);
    await ready();
    assert.equal(documentCsp, CSP, "the page is served under the CSP");
    let seen = await watch();
    assert.equal(seen.mounts, 2, "StrictMode (development build) mounted the app twice");
    assert.equal(seen.channels, 1, "one TokenManager");
    assert.equal(await refreshRequests(), 1, "one restore request at the server");
    assert.equal(await page.getAttribute("body", "data-state"), "signedOut");
    assert.ok(await page.isVisible("#login-form"));
    // A request made on mount waited for restore() and found no session.
    await page.waitForSelector("#on-load:has-text('not_authenticated')", { timeout: 10_000 });

    // Login: the name and roles come from the token's claims through useSession().
    await page.fill("input[name=password]", DEMO_USER.password);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector(`#user-name:has-text('${DISPLAY_NAME}')`, { timeout: 10_000 });
    assert.equal(await text("#user-roles"), ROLES.join(", "));
    assert.equal(await page.getAttribute("body", "data-state"), "signedIn");
    assert.equal(await text("#error"), "");

    // The API through useAuthFetch, and through the ky and axios recipes.
    await callApi("#call-api", "fetch");
    await callApi("#call-ky", "ky");
    await callApi("#call-axios", "axios");

    // A silent refresh: useSession() re-renders with the new token's claims.
    const exp = await page.getAttribute("#expires-at", "data-exp");
    await page.waitForFunction((old) => document.querySelector("#expires-at")?.dataset.exp !== old, exp, {
      timeout: TTL * 1000 + 5000,
      polling: 100,
    });
    await assertNoTokenExposed(context, { expectCookie: true });

    // Load the app again: StrictMode again, one manager, one request to restore (counted at the
    // server). Through about:blank, so the old page's refresh timer cannot add a request.
    await page.goto("about:blank");
    const beforeRestore = await refreshRequests();
    await page.goto(base);
    await ready();
    assert.equal(await page.getAttribute("body", "data-state"), "signedIn", "the session is restored");
    assert.equal(await text("#user-name"), DISPLAY_NAME);
    seen = await watch();
    assert.equal(seen.mounts, 2);
    assert.equal(seen.channels, 1, "one TokenManager after the reload");
    assert.equal(await refreshRequests(), beforeRestore + 1, "one restore request at the server");
    // The request made on mount, before restore() settled, went out with the restored token.
    await page.waitForSelector(`#on-load:has-text('welcome back, ${DISPLAY_NAME}')`, { timeout: 10_000 });

    // Logout, then a reload finds no session: one more request at the server, and only one.
    const logoutAnswer = nextLogoutAnswer(page);
    await page.click("#logout");
    await page.waitForSelector("body[data-state=signedOut]", { timeout: 10_000 });
    assert.ok(await page.isVisible("#login-form"));
    // Signed out at once; the cookie is cleared only by the logout answer, which may come later.
    assert.ok((await logoutAnswer).ok(), "the server was told");
    assert.equal(await text("#error"), "", "no logout_failed");
    await assertNoTokenExposed(context, { expectCookie: false });
    const beforeReload = await refreshRequests();
    await page.reload();
    await ready();
    assert.equal(await page.getAttribute("body", "data-state"), "signedOut", "nothing restored after logout");
    assert.equal(await refreshRequests(), beforeReload + 1, "one restore request at the server");

    seen = await watch();
    assert.deepEqual(seen.csp, [], "no Content-Security-Policy violation");
    assert.deepEqual(page.pageErrors ?? [], [], "no uncaught exception in the page");
  } catch (error) {
    await page.screenshot({ path: join(ARTIFACTS, "react-spa-failure.png"), fullPage: true }).catch(() => {});
    throw error;
  }
});

test("the server-rendered page is the loading session; the browser hydrates it without a mismatch, then restores", { timeout: 60_000 }, async (t) => {
  const served = await (await fetch(`${base}/ssr.html`)).text();
  assert.match(served, /<div id="root"><p>Session: loading…<\/p><\/div>/, "the server rendered isLoading");

  const context = await newContext(browser);
  t.after(() => context.close());
  await context.addInitScript(WATCH);
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  const ready = () => page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
  try {
    // Sign in on the client-rendered page, then open the server-rendered one: hydration, then
    // the provider's effect restores the session through the refresh cookie.
    await page.goto(base);
    await ready();
    await page.fill("input[name=password]", DEMO_USER.password);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector(`#user-name:has-text('${DISPLAY_NAME}')`, { timeout: 10_000 });

    consoleErrors.length = 0; // the first load's 401 (no session yet) is logged as a failed resource
    await page.goto(`${base}/ssr.html`);
    await ready();
    assert.equal(await page.getAttribute("body", "data-state"), "signedIn", "restored after hydration");
    assert.equal(await page.locator("#user-name").innerText(), DISPLAY_NAME);
    await page.waitForSelector(`#on-load:has-text('welcome back, ${DISPLAY_NAME}')`, { timeout: 10_000 });
    const seen = await page.evaluate(() => ({ ...window.__reactWatch, mounts: Number(document.body.dataset.mounts) }));
    assert.equal(seen.mounts, 2, "hydrated under StrictMode");
    assert.equal(seen.channels, 1, "one TokenManager");
    assert.deepEqual(seen.csp, [], "no Content-Security-Policy violation");
    assert.deepEqual(consoleErrors, [], "no hydration mismatch (React reports one as a console error)");
    assert.deepEqual(page.pageErrors ?? [], [], "no uncaught exception in the page");
  } catch (error) {
    await page.screenshot({ path: join(ARTIFACTS, "react-spa-ssr-failure.png"), fullPage: true }).catch(() => {});
    throw error;
  }
});
