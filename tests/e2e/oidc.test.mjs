// The upstream mode (issue 19) end to end: the reference server as a token-mediating backend
// of a real OpenID Connect provider (panva's oidc-provider, tests/oidc/provider.mjs, in this
// process) with access tokens of 4 seconds and refresh-token rotation on every use. Chromium
// signs in on the provider's own login and consent pages; the page holds only the provider's
// access tokens, the provider's refresh token never leaves the server.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, beforeEach, test } from "node:test";

import { API_AUDIENCE, API_SCOPE, CLIENT_ID, CLIENT_SECRET, startProvider } from "../oidc/provider.mjs";
import {
  assertNoTokenExposed,
  claims,
  demoUrl,
  FAST,
  gotoDemo,
  launchBrowser,
  newContext,
  state,
  waitForEvents,
} from "./helpers/browser.mjs";
import { ARTIFACTS, startServer } from "./helpers/server.mjs";

const TTL = 4; // seconds, the provider's access token lifetime

let provider;
let server;
let browser;
let context;

/** A port nobody listens on now: the server's, known before the provider registers its callback. */
function freePort() {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

before(async () => {
  const port = await freePort();
  const app = `http://localhost:${port}`;
  provider = await startProvider({
    redirectUris: [`${app}/auth/callback`],
    postLogoutRedirectUris: [`${app}/`],
    accessTtl: TTL,
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  const secretFile = join(ARTIFACTS, "oidc-client-secret");
  writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
  [server, browser] = await Promise.all([
    startServer({
      name: "oidc",
      args: [
        "--listen", `127.0.0.1:${port}`,
        "--upstream-issuer", provider.issuer,
        "--upstream-client-id", CLIENT_ID,
        "--upstream-client-secret-file", secretFile,
        "--upstream-scopes", `openid profile email offline_access ${API_SCOPE}`,
        // oidc-provider follows OpenID Connect Core §11: no refresh token without it.
        "--upstream-prompt", "consent",
        "--redirect-uri", `${app}/auth/callback`,
      ],
    }),
    launchBrowser(),
  ]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
  await provider?.close();
});
beforeEach(async () => {
  await context?.close();
  await provider.start();
  await server.reset();
  context = await newContext(browser);
});

/** The storage checks of every spec, on the app's jar: the provider's own cookies live on its host. */
async function assertAppHoldsNoToken() {
  await context.clearCookies({ domain: "127.0.0.1" });
  await assertNoTokenExposed(context, { expectCookie: true });
}

/** The demo page's path with its options: where the callback sends the browser back. */
function returnTo() {
  const url = new URL(demoUrl(server.url, FAST));
  return url.pathname + url.search;
}

/**
 * Signs `account` in the way a user does: the app sends the browser to /auth/authorize, the
 * provider shows its login and consent pages, the callback sends it back to the demo page,
 * whose restore() finds the session. Returns the page.
 */
async function signInThroughProvider(account = "alice") {
  const page = await context.newPage();
  await page.goto(`${server.url}/auth/authorize?returnTo=${encodeURIComponent(returnTo())}`);
  await page.waitForURL((u) => u.origin === provider.issuer, { timeout: 15_000 });
  await page.fill('input[name="login"]', account);
  await page.fill('input[name="password"]', "any password: the dev login page checks none");
  await page.click('button[type="submit"]');
  // The consent page of the development interactions.
  await page.waitForSelector('input[name="prompt"][value="consent"]', { state: "attached", timeout: 15_000 });
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.origin === server.url, { timeout: 15_000 });
  await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 15_000, polling: 50 });
  return page;
}

test("a user signs in at the provider and the page holds the provider's access token", async () => {
  const codesBefore = provider.stats.codes;
  const page = await signInThroughProvider("alice");
  assert.equal(await state(page), "signedIn");
  assert.equal(await page.evaluate(() => window.demo.restored), true, "restore() found the new session");
  const c = await claims(page);
  assert.equal(c.sub, "alice");
  assert.equal(c.iss, provider.issuer, "the provider's token, not one of the server's");
  assert.equal(c.aud, API_AUDIENCE);
  assert.equal(c.exp - c.iat, TTL);
  assert.equal(provider.stats.codes, codesBefore + 1, "one code exchange");
  // The state cookie is gone, the refresh cookie is the server's own (HttpOnly, __Host-).
  assert.deepEqual((await context.cookies(server.url)).map((k) => k.name), ["__Host-refresh"]);
  await assertAppHoldsNoToken();
  assert.deepEqual(page.pageErrors, []);
});

test("silent refresh over three lifetimes rotates the provider's refresh token each time", async () => {
  const page = await signInThroughProvider("bob");
  const refreshesBefore = provider.stats.refreshes;
  const tokensBefore = provider.refreshTokens.length;
  const since = await page.evaluate(() => Date.now());
  // 3 × 4 s of session, each token refreshed at half its lifetime.
  await waitForEvents(page, "refresh", { count: 4, since, timeout: 3 * TTL * 1000 + 10_000 });
  assert.equal(await state(page), "signedIn");
  assert.equal((await claims(page)).sub, "bob");
  assert.ok(provider.stats.refreshes - refreshesBefore >= 3, `${provider.stats.refreshes - refreshesBefore} upstream refreshes`);
  const rotated = provider.refreshTokens.slice(tokensBefore);
  assert.ok(rotated.length >= 3 && new Set(rotated).size === rotated.length, "a new provider refresh token each time");
  // Every token the page received is the provider's, and a fresh one each refresh.
  const issued = [...context.issuedTokens];
  assert.ok(issued.length >= 5 && new Set(issued).size === issued.length);
  await assertAppHoldsNoToken();
  assert.deepEqual(page.pageErrors, []);
});

test("a reload restores the session through the refresh cookie", async () => {
  const page = await signInThroughProvider("alice");
  await gotoDemo(page, server.url, FAST);
  assert.equal(await page.evaluate(() => window.demo.restored), true);
  assert.equal(await state(page), "signedIn");
  assert.equal((await claims(page)).sub, "alice");
  assert.deepEqual(page.pageErrors, []);
});
