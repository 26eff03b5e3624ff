// The package as users meet it: `npm pack` of pkg/, installed from that tarball into the Vite
// example (examples/vite-spa), type-checked with `strict`, built with `vite build` and served by
// `vite preview`, which proxies /auth and /api to the reference server so the refresh cookie is
// first-party. In Chromium: login → the user's name from the claims → /api/me through
// `auth.fetch` → a silent refresh → reload restores the session → logout.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createWriteStream, lstatSync, readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { assertNoTokenExposed, nextLogoutAnswer, assertStrictHeaders, launchBrowser, newContext } from "./helpers/browser.mjs";
import { ARTIFACTS, DEMO_USER, ROOT, startServer } from "./helpers/server.mjs";
import { freePort } from "./helpers/ports.mjs";

const EXAMPLE = join(ROOT, "examples/vite-spa");
const PKG = join(ROOT, "pkg");
const BIN = join(EXAMPLE, "node_modules/.bin");
// Long enough that the default refresh budget (12 a minute) never throttles, short enough that
// a silent refresh (at most half the lifetime in) happens within the test.
const TTL = 6;
// The display name and roles come from the server's account, not from what was typed: seeing
// them on the page proves they were read from the token's claims.
const DISPLAY_NAME = "Ada Lovelace";
const ROLES = ["user", "reader"];

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
  const log = createWriteStream(join(ARTIFACTS, "vite-preview-spa.log"));
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
    if (early !== null) throw new Error(`vite preview exited (${early}); see tests/e2e/artifacts/vite-preview-spa.log`);
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

let work; // temporary directory: the tarball and the production build
let tarball;
let dist;
let server;
let preview;
let browser;
let base;

before(
  async () => {
    for (const file of ["package.json", "wasm_token_manager.js", "wasm_token_manager_bg.wasm"]) {
      try {
        lstatSync(join(PKG, file));
      } catch {
        throw new Error(`pkg/${file} is missing: run npm run build (scripts/e2e.sh builds it)`);
      }
    }
    work = await mkdtemp(join(tmpdir(), "wtm-spa-"));
    dist = join(work, "dist");
    browser = await launchBrowser();

    // The tarball exactly as it would be published.
    const packed = await run("npm", ["pack", "--pack-destination", work, "--loglevel=error"], { cwd: PKG });
    tarball = join(work, packed.trim().split("\n").pop());

    // Installed as a user installs it: a file: dependency on the tarball. --no-save keeps the
    // example's committed package.json and lockfile as they are (they pin only the tooling).
    await run(
      "npm",
      ["install", "--no-save", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarball],
      { cwd: EXAMPLE },
    );
    await run(join(BIN, "tsc"), ["--noEmit", "-p", "tsconfig.json"], { cwd: EXAMPLE });
    await run(join(BIN, "tsc"), ["--noEmit", "-p", "tsconfig.node.json"], { cwd: EXAMPLE });
    await run(join(BIN, "vite"), ["build", "--outDir", dist, "--emptyOutDir", "--logLevel", "warn"], { cwd: EXAMPLE });

    // The server's CSRF check compares the browser's Origin with --allowed-origin: the origin of
    // the app, since the proxy forwards the browser's headers. A port taken between the probe and
    // `vite preview` is retried.
    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      base = `http://localhost:${port}`;
      server = await startServer({
        name: "spa",
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
  if (timings.length) console.log(`spa: ${timings.join(", ")}`);
});

test("the example runs the packed tarball, installed as a package, not a link to pkg/", () => {
  const installed = join(EXAMPLE, "node_modules/wasm-token-manager");
  assert.ok(!lstatSync(installed).isSymbolicLink(), "node_modules/wasm-token-manager is a copy, not a link");
  const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
  assert.equal(manifest.version, JSON.parse(readFileSync(join(PKG, "package.json"), "utf8")).version);
  // The bytes of this build, not an older tarball npm kept in its cache.
  for (const file of ["wasm_token_manager_bg.wasm", "wasm_token_manager.js", "wasm_token_manager.d.ts"]) {
    assert.ok(readFileSync(join(installed, file)).equals(readFileSync(join(PKG, file))), `${file} is the one in pkg/`);
  }
});

test("vite build emits the wasm as a hashed asset and the glue loads it from there", () => {
  const assets = readdirSync(join(dist, "assets"));
  const wasm = assets.filter((f) => f.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one wasm asset: ${assets}`);
  assert.match(wasm[0], /^wasm_token_manager_bg-[\w-]{6,}\.wasm$/, "content-hashed name");
  assert.ok(
    readFileSync(join(dist, "assets", wasm[0])).equals(readFileSync(join(PKG, "wasm_token_manager_bg.wasm"))),
    "the asset is the package's wasm",
  );
  const js = assets.filter((f) => f.endsWith(".js")).map((f) => readFileSync(join(dist, "assets", f), "utf8")).join("\n");
  assert.ok(js.includes(`/assets/${wasm[0]}`), "the glue points at the hashed asset");
  assert.ok(!/node_modules|\/pkg\//.test(js), "no path into node_modules or pkg/ survives the build");
});

test("login → the user's name → /api/me → silent refresh → reload restores → logout", { timeout: 60_000 }, async (t) => {
  const context = await newContext(browser);
  t.after(() => context.close());
  const page = await context.newPage();
  const wasmLoads = [];
  const apiAuthorization = [];
  const documents = [];
  page.on("response", (r) => {
    if (new URL(r.url()).pathname.endsWith(".wasm")) wasmLoads.push({ url: r.url(), status: r.status(), type: r.headers()["content-type"] });
    if (r.request().resourceType() === "document") documents.push(r);
  });
  page.on("request", (r) => {
    if (new URL(r.url()).pathname === "/api/me") apiAuthorization.push(r.headers().authorization ?? "");
  });
  const ready = () => page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
  const text = (selector) => page.locator(selector).innerText();

  try {
    await page.goto(base);
    await ready();
    assert.equal(await page.getAttribute("body", "data-state"), "signedOut");
    assert.ok(await page.isVisible("#login-form"), "the login form is shown before any session");

    // Login, and the name from the claims.
    await page.fill("input[name=password]", DEMO_USER.password);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#user-name:has-text('Ada Lovelace')", { timeout: 10_000 });
    assert.equal(await text("#user-roles"), ROLES.join(", "));
    assert.equal(await page.getAttribute("body", "data-state"), "signedIn");
    assert.equal(await text("#error"), "");

    // The API, through auth.fetch: the token attached by the package.
    await page.click("#call-api");
    await page.waitForSelector("#api-result:has-text('200')", { timeout: 10_000 });
    const result = await text("#api-result");
    const me = JSON.parse(result.slice(result.indexOf("{")));
    assert.equal(me.sub, DEMO_USER.username);
    assert.equal(me.name, DISPLAY_NAME);
    assert.deepEqual(me.roles, ROLES);
    assert.equal(apiAuthorization.length, 1);
    assert.match(apiAuthorization[0], /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);

    // A silent refresh through the proxied cookie (the token lives TTL seconds).
    await page.waitForFunction(() => Number(document.querySelector("#refresh-count")?.textContent) >= 1, null, {
      timeout: TTL * 1000 + 5000,
      polling: 100,
    });
    await assertNoTokenExposed(context, { expectCookie: true });

    // A reload starts with no token in memory: restore() gets one through the refresh cookie.
    await page.reload();
    await ready();
    assert.equal(await page.getAttribute("body", "data-state"), "signedIn", "the session is restored");
    assert.equal(await text("#user-name"), DISPLAY_NAME);
    await assertNoTokenExposed(context, { expectCookie: true });

    // Logout: signed out here, the cookie cleared, and nothing to restore on the next load.
    const logoutAnswer = nextLogoutAnswer(page);
    await page.click("#logout");
    await page.waitForSelector("body[data-state=signedOut]", { timeout: 10_000 });
    assert.ok(await page.isVisible("#login-form"));
    // Signed out at once; the cookie is cleared only by the logout answer, which may come later.
    assert.ok((await logoutAnswer).ok(), "the server was told");
    assert.equal(await text("#error"), "", "no logout_failed");
    await assertNoTokenExposed(context, { expectCookie: false });
    await page.reload();
    await ready();
    assert.equal(await page.getAttribute("body", "data-state"), "signedOut", "nothing restored after logout");

    // The wasm came from its hashed asset URL, served as application/wasm (streaming compile).
    // A reload may take it from the memory cache, so only the first load is certain.
    assert.ok(wasmLoads.length >= 1, "the wasm was fetched");
    for (const load of wasmLoads) {
      assert.match(new URL(load.url).pathname, /^\/assets\/wasm_token_manager_bg-[\w-]+\.wasm$/);
      assert.ok([200, 304].includes(load.status), `status ${load.status}`);
      assert.equal(load.type, "application/wasm");
    }
    assert.deepEqual(page.pageErrors ?? [], [], "no uncaught exception in the page");
    // `vite preview` serves the app with the policy an app using the package needs (see
    // vite.config.ts), and the whole run stays within it.
    assert.ok(documents.length >= 2, "the load and the reload were seen");
    for (const response of documents) assertStrictHeaders(response);
    assert.deepEqual(context.cspViolations, [], "no Content-Security-Policy violation");
  } catch (error) {
    await page.screenshot({ path: join(ARTIFACTS, "spa-failure.png"), fullPage: true }).catch(() => {});
    throw error;
  }
});
