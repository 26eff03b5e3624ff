// The upstream mode (issue 19) with a provider that issues **opaque** access tokens (as Auth0
// does without an API audience): the real oidc-provider of tests/oidc/provider.mjs without its
// JWT resource format. The page cannot decode such a token: it shows the claims of the ID
// token the server validated and sends beside it (`id_token_claims`), takes the expiry from
// `expires_in`, refreshes silently and restores on reload, and `auth.fetch` attaches the
// token as it does a JWT.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { ACCOUNTS, CLIENT_ID, startProvider } from "../oidc/provider.mjs";
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
import { clientSecretFile, upstreamArgs } from "../oidc/upstream.mjs";
import { startServer } from "./helpers/server.mjs";
import { freePort } from "./helpers/ports.mjs";

const TTL = 4; // seconds, the provider's access token lifetime

let provider;
let server;
let browser;
let context;

before(async () => {
  const port = await freePort();
  const app = `http://localhost:${port}`;
  provider = await startProvider({
    redirectUris: [`${app}/auth/callback`],
    postLogoutRedirectUris: [`${app}/`],
    accessTtl: TTL,
    accessTokenFormat: "opaque",
  });
  const secretFile = clientSecretFile("oidc-opaque");
  [server, browser] = await Promise.all([
    startServer({ name: "oidc-opaque", port, args: upstreamArgs({ issuer: provider.issuer, port, secretFile }) }),
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
  await server.reset();
  context = await newContext(browser);
});

function returnTo() {
  const url = new URL(demoUrl(server.url, FAST));
  return url.pathname + url.search;
}

async function signInThroughProvider(account) {
  const page = await context.newPage();
  await gotoDemo(page, server.url, FAST);
  assert.equal(await state(page), "signedOut");
  page.evaluate((r) => window.demo.auth.loginWithRedirect({ returnTo: r }), returnTo()).catch(() => {});
  await page.waitForURL((u) => u.origin === provider.issuer, { timeout: 15_000 });
  await page.fill('input[name="login"]', account);
  await page.fill('input[name="password"]', "any password: the dev login page checks none");
  await page.click('button[type="submit"]');
  await page.waitForSelector('input[name="prompt"][value="consent"]', { state: "attached", timeout: 15_000 });
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.origin === server.url, { timeout: 15_000 });
  await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 15_000, polling: 50 });
  return page;
}

test("opaque provider access tokens: claims from the ID token, attached by auth.fetch, refreshed silently, restored on reload", { timeout: 60_000 }, async () => {
  const page = await signInThroughProvider("alice");
  assert.equal(await state(page), "signedIn");
  assert.equal(await page.evaluate(() => window.demo.restored), true, "restore() found the new session");
  const issued = [...context.issuedTokens];
  assert.ok(issued.length >= 1 && issued.every((t) => !t.includes(".")), "the provider's tokens are opaque");
  // The claims for the UI are the ID token's: issued to the client, with the profile.
  const c = await claims(page);
  assert.equal(c.sub, "alice");
  assert.equal(c.iss, provider.issuer);
  assert.deepEqual([c.aud].flat(), [CLIENT_ID], "the ID token's audience: the claims are the ID token's");
  assert.equal(c.name, ACCOUNTS.alice.name);
  assert.equal(c.email, ACCOUNTS.alice.email);
  // The expiry comes from expires_in, not from the ID token's exp (an hour away).
  const left = await page.evaluate(() => window.demo.auth.expiresAt() - Date.now());
  assert.ok(left > 0 && left <= TTL * 1000, `${left} ms left`);

  // auth.fetch sends the opaque token as a bearer token, as it does a JWT.
  let sent = null;
  await page.route("**/api/opaque-probe", async (route) => {
    sent = route.request().headers().authorization ?? null;
    await route.fulfill({ status: 200, contentType: "application/json", body: "{}" });
  });
  const status = await page.evaluate(async () => (await window.demo.auth.fetch("/api/opaque-probe")).status);
  assert.equal(status, 200);
  assert.match(sent ?? "", /^Bearer [^.\s]+$/);
  assert.ok(context.issuedTokens.has(sent.slice("Bearer ".length)), "the token the server handed out");

  // Silent refresh over two lifetimes: new opaque tokens, the same claims.
  const since = await page.evaluate(() => Date.now());
  await waitForEvents(page, "refresh", { count: 2, since, timeout: 2 * TTL * 1000 + 10_000 });
  assert.equal(await state(page), "signedIn");
  assert.equal((await claims(page)).name, ACCOUNTS.alice.name);
  assert.ok(context.issuedTokens.size >= issued.length + 2, "a fresh token each refresh");

  // A reload restores the session through the refresh cookie, claims included.
  await gotoDemo(page, server.url, FAST);
  assert.equal(await page.evaluate(() => window.demo.restored), true);
  assert.equal(await state(page), "signedIn");
  assert.equal((await claims(page)).email, ACCOUNTS.alice.email);

  await context.clearCookies({ domain: "127.0.0.1" });
  await assertNoTokenExposed(context, { expectCookie: true });
  assert.deepEqual(page.pageErrors, []);
});

test("a second tab adopts the opaque token with its claims from the first, without a request", { timeout: 60_000 }, async () => {
  const first = await signInThroughProvider("bob");
  const refreshes = [];
  context.on("request", (r) => {
    if (new URL(r.url()).pathname === "/auth/refresh") refreshes.push(r);
  });
  const second = await context.newPage();
  await gotoDemo(second, server.url, FAST);
  assert.equal(await state(second), "signedIn");
  assert.equal((await claims(second)).name, ACCOUNTS.bob.name);
  assert.equal((await claims(second)).sub, (await claims(first)).sub);
  assert.equal(refreshes.length, 0, "the sibling answered; the endpoint was not called");
  assert.deepEqual(second.pageErrors, []);
});
