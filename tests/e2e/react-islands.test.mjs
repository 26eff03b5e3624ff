// Two React roots with a <TokenManagerProvider> each on one page (islands, micro-frontends),
// mounted together so their `init()` calls overlap: the wasm is fetched and instantiated once
// (a second instance would leave the first manager calling into it), both managers work, and
// they share the session over the channel. The page is bundled by esbuild from tests/e2e/fixtures and served
// by the reference server itself, so /auth is same-origin.

import assert from "node:assert/strict";
import { copyFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { build } from "esbuild";

import { launchBrowser, newContext } from "./helpers/browser.mjs";
import { DEMO_USER, ROOT, startServer } from "./helpers/server.mjs";

let work;
let server;
let browser;

before(
  async () => {
    work = await mkdtemp(join(tmpdir(), "wtm-islands-"));
    await build({
      entryPoints: [join(ROOT, "tests/e2e/fixtures/react-islands.mjs")],
      bundle: true,
      format: "esm",
      target: "es2020",
      outfile: join(work, "app.js"),
      define: { "process.env.NODE_ENV": '"development"' }, // StrictMode's double mount is on
      logLevel: "warning",
    });
    // The glue loads `new URL("wasm_token_manager_bg.wasm", import.meta.url)`: next to app.js.
    copyFileSync(join(ROOT, "pkg/wasm_token_manager_bg.wasm"), join(work, "wasm_token_manager_bg.wasm"));
    writeFileSync(
      join(work, "index.html"),
      '<!doctype html><html lang="en"><meta charset="utf-8"><title>islands</title><body><script type="module" src="/app.js"></script></body></html>\n',
    );
    // A later --www wins: this page instead of the demo. Tokens outlive the test (no refresh).
    server = await startServer({ name: "react-islands", accessTtl: 60, args: ["--www", work] });
    browser = await launchBrowser();
  },
  { timeout: 120_000 },
);

after(async () => {
  await browser?.close();
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test("two providers mounted together on one page: one wasm instance, both managers work and share the session", { timeout: 60_000 }, async (t) => {
  const context = await newContext(browser);
  t.after(() => context.close());
  const page = await context.newPage();
  const wasmFetches = [];
  page.on("request", (r) => {
    if (new URL(r.url()).pathname.endsWith(".wasm")) wasmFetches.push(r.url());
  });

  await page.goto(`${server.url}/index.html`);
  await page.waitForSelector("#a[data-ready=true]", { state: "attached", timeout: 15_000 });
  await page.waitForSelector("#b[data-ready=true]", { state: "attached", timeout: 15_000 });
  assert.equal(wasmFetches.length, 1, "the wasm is fetched and instantiated once");
  assert.equal(await page.getAttribute("#a", "data-state"), "signedOut");
  assert.equal(await page.getAttribute("#b", "data-state"), "signedOut");

  // Sign in through one island; the other hears it on the channel and can call the API.
  await page.evaluate((user) => window.__islands.a.login(user), DEMO_USER);
  await page.waitForSelector(`#a[data-state=signedIn]:has-text('${DEMO_USER.username}')`, { timeout: 10_000 });
  await page.waitForSelector(`#b[data-state=signedIn]:has-text('${DEMO_USER.username}')`, { timeout: 10_000 });
  const status = await page.evaluate(async () => (await window.__islands.b.fetch("/api/me")).status);
  assert.equal(status, 200);
  assert.deepEqual(page.pageErrors ?? [], [], "no uncaught exception in the page");
});
