// The upstream mode (issue 19) end to end: the reference server as a token-mediating backend
// of a real OpenID Connect provider (panva's oidc-provider, tests/oidc/provider.mjs, in this
// process) with access tokens of 4 seconds and refresh-token rotation on every use. Chromium
// signs in on the provider's own login and consent pages; the page holds only the provider's
// access tokens, the provider's refresh token never leaves the server.
//
// scripts/test.sh runs this spec twice: with one server on SQLite, and with
// TOKEN_SERVER_E2E_SHARED=1, where the "server" is two instances on one redis-server behind
// nginx round robin (tests/e2e/helpers/shared.mjs): the provider's tokens and the
// upstream-refresh lock then live in Redis, and the tabs' refreshes reach both instances.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { API_AUDIENCE, CLIENT_ID, CLIENT_SECRET, startProvider } from "../oidc/provider.mjs";
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
import { SHARED, startServer } from "./helpers/server.mjs";
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
  });
  const secretFile = clientSecretFile("oidc");
  [server, browser] = await Promise.all([
    startServer({ name: "oidc", port, instances: 2, args: upstreamArgs({ issuer: provider.issuer, port, secretFile }) }),
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

/**
 * Resolves once `page` holds its session in the `signedIn` state. With tokens of 4 s a tab
 * refreshes every 2 s or so, so at any instant it may be `refreshing` (longer through nginx
 * and Redis): a check of one instant would race with that.
 */
function signedIn(page) {
  return page.waitForFunction(() => window.demo.auth.state === "signedIn", null, { timeout: 10_000, polling: 50 });
}

/** The demo page's path with its options: where the callback sends the browser back. */
function returnTo() {
  const url = new URL(demoUrl(server.url, FAST));
  return url.pathname + url.search;
}

/**
 * Signs `account` in the way a user does: the app calls loginWithRedirect(), which sends the
 * browser to /auth/authorize, the
 * provider shows its login and consent pages, the callback sends it back to the demo page,
 * whose restore() finds the session. Returns the page.
 */
async function signInThroughProvider(account = "alice") {
  const page = await context.newPage();
  await gotoDemo(page, server.url, FAST);
  assert.equal(await state(page), "signedOut");
  // The page unloads as it navigates: the evaluation's own result never comes back.
  page.evaluate((r) => window.demo.auth.loginWithRedirect({ returnTo: r }), returnTo()).catch(() => {});
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
  await signedIn(page);
  assert.equal(await page.evaluate(() => window.demo.restored), true, "restore() found the new session");
  assert.equal(new URL(page.url()).search, new URL(demoUrl(server.url, FAST)).search, "back at returnTo");
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
  await signedIn(page);
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
  await signedIn(page);
  assert.equal((await claims(page)).sub, "alice");
  assert.deepEqual(page.pageErrors, []);
});

test("logout revokes the provider's refresh token and answers the provider's end-session URL", { timeout: 60_000 }, async () => {
  const page = await signInThroughProvider("alice");
  const held = provider.refreshTokens.at(-1);
  const revocationsBefore = provider.stats.revocations;
  // The logout request as the package sends it, read here for its body.
  const { status, body } = await page.evaluate(async () => {
    const r = await fetch("/auth/logout", {
      method: "POST",
      credentials: "include",
      headers: { "X-Requested-With": "wasm-token-manager" },
    });
    return { status: r.status, body: await r.json() };
  });
  assert.equal(status, 200);
  const endSession = new URL(body.end_session_url);
  assert.equal(endSession.origin, provider.issuer, "RP-initiated logout at the provider");
  assert.equal(endSession.searchParams.get("client_id"), CLIENT_ID);
  assert.equal(endSession.searchParams.get("post_logout_redirect_uri"), `${server.url}/`);
  assert.ok(endSession.searchParams.get("id_token_hint")?.split(".").length === 3, "id_token_hint is the ID token");
  assert.equal(provider.stats.revocations, revocationsBefore + 1, "one RFC 7009 revocation");
  // Asked directly, the provider refuses the refresh token the server held.
  const refused = await provider.tryRefreshToken(held);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error, "invalid_grant");
  await gotoDemo(page, server.url, FAST);
  assert.equal(await page.evaluate(() => window.demo.restored), false, "the session is over on the server too");
});

test("auth.logout() resolves to the provider's end-session URL, and navigating there ends the provider session", { timeout: 60_000 }, async () => {
  const page = await signInThroughProvider("alice");
  const result = await page.evaluate(() => window.demo.auth.logout());
  assert.equal(await state(page), "signedOut");
  const discovery = await (await fetch(`${provider.issuer}/.well-known/openid-configuration`)).json();
  const url = new URL(result.endSessionUrl);
  assert.equal(url.origin + url.pathname, discovery.end_session_endpoint, "the provider's end_session_endpoint");
  assert.equal(url.searchParams.get("client_id"), CLIENT_ID);
  assert.equal(url.searchParams.get("post_logout_redirect_uri"), `${server.url}/`);
  const hint = url.searchParams.get("id_token_hint").split(".");
  assert.equal(hint.length, 3, "id_token_hint is the ID token");
  const idToken = JSON.parse(Buffer.from(hint[1], "base64url").toString());
  assert.equal(idToken.sub, "alice");
  assert.equal(idToken.aud, CLIENT_ID);
  // Before the navigation the provider still knows the user: a new sign-in skips its login
  // page (straight to the consent the server asks for).
  page.evaluate((r) => window.demo.auth.loginWithRedirect({ returnTo: r }), returnTo()).catch(() => {});
  await page.waitForSelector('input[name="prompt"][value="consent"]', { state: "attached", timeout: 15_000 });
  assert.equal(await page.locator('input[name="login"]').count(), 0, "no login page while the provider session lives");
  // RP-initiated logout: the app navigates to the URL; the provider confirms and sends the
  // browser back to the post-logout redirect URI the server registered.
  await page.goto(result.endSessionUrl);
  await page.click('button[name="logout"][value="yes"]');
  await page.waitForURL((u) => u.origin === server.url, { timeout: 15_000 });
  await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 15_000, polling: 50 });
  assert.equal(await page.evaluate(() => window.demo.restored), false);
  // The provider session is over: signing in asks for credentials again.
  page.evaluate((r) => window.demo.auth.loginWithRedirect({ returnTo: r }), returnTo()).catch(() => {});
  await page.waitForURL((u) => u.origin === provider.issuer, { timeout: 15_000 });
  await page.waitForSelector('input[name="login"]', { timeout: 15_000 });
  assert.deepEqual(page.pageErrors, []);
});

test("while the provider is down refreshes answer 503, the session survives and recovers by itself", { timeout: 60_000 }, async () => {
  const page = await signInThroughProvider("bob");
  const codes = provider.stats.codes;
  const since = await page.evaluate(() => Date.now());
  const unavailable = [];
  page.on("response", (r) => {
    if (new URL(r.url()).pathname === "/auth/refresh" && r.status() === 503) unavailable.push(r.headers()["retry-after"]);
  });
  await provider.stop();
  const [first] = await waitForEvents(page, "error", { since, timeout: 3 * TTL * 1000 });
  // 503 with Retry-After: the package reports it as rate_limited and honours the wait.
  assert.equal(first.detail.code, "rate_limited");
  assert.equal(first.detail.tokenValid, true, "the valid token is kept");
  // Down for longer than a lifetime: the token runs out, the retries go on.
  const [expired] = await waitForEvents(page, "expired", { since, timeout: 3 * TTL * 1000 });
  assert.equal(expired.detail.retrying, true);
  assert.ok(unavailable.length >= 1 && unavailable.every((v) => Number(v) >= 1), `Retry-After: ${unavailable}`);
  await provider.start();
  const [back] = await waitForEvents(page, "refresh", { since: expired.at, timeout: 15_000 });
  assert.equal(back.detail.source, "refresh");
  await signedIn(page);
  assert.equal((await claims(page)).sub, "bob");
  assert.equal(provider.stats.codes, codes, "no new sign-in");
  assert.deepEqual(await page.evaluate(() => window.demo.events.filter((e) => e.type === "logout")), []);
});

test("a refresh token the provider revoked ends the session: 401 invalid_grant, the family revoked", { timeout: 60_000 }, async () => {
  const page = await signInThroughProvider("alice");
  // Revoked behind the server's back (an administrator, the user at the provider).
  const revoked = await fetch(`${provider.issuer}/token/revocation`, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      Authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString("base64")}`,
    },
    body: new URLSearchParams({ token: provider.refreshTokens.at(-1), token_type_hint: "refresh_token" }),
  });
  assert.equal(revoked.status, 200);
  const refused = page.waitForResponse(
    (r) => new URL(r.url()).pathname === "/auth/refresh" && r.status() === 401,
    { timeout: 3 * TTL * 1000 },
  );
  assert.equal((await refused).status(), 401);
  // The package drops the session at once: a refused refresh is final.
  await page.waitForFunction(() => window.demo.auth.state !== "signedIn", null, { timeout: 10_000, polling: 50 });
  assert.notEqual(await state(page), "signedIn");
  // The server revoked the family: the cookie restores nothing any more.
  await gotoDemo(page, server.url, FAST);
  assert.equal(await page.evaluate(() => window.demo.restored), false);
});

test("three tabs make one upstream refresh per token", { timeout: 60_000 }, async () => {
  const first = await signInThroughProvider("bob");
  const tabs = [first];
  for (let i = 0; i < 2; i++) {
    const tab = await context.newPage();
    await gotoDemo(tab, server.url, FAST);
    tabs.push(tab);
  }
  for (const tab of tabs) await signedIn(tab);
  const refreshesBefore = provider.stats.refreshes;
  const tokensBefore = context.issuedTokens.size;
  const since = await first.evaluate(() => Date.now());
  for (const tab of tabs) await waitForEvents(tab, "refresh", { count: 3, since, timeout: 4 * TTL * 1000 });
  const newTokens = context.issuedTokens.size - tokensBefore;
  const upstream = provider.stats.refreshes - refreshesBefore;
  assert.ok(newTokens >= 3, `${newTokens} new tokens`);
  // Each token the tabs received came from exactly one refresh at the provider.
  assert.ok(upstream === newTokens || upstream === newTokens + 1, `${upstream} upstream refreshes for ${newTokens} tokens`);
  if (SHARED) {
    // Two instances on one Redis: the tabs' refreshes went through both, and still one
    // upstream refresh per token (the lock is Redis's, not an instance's).
    const perInstance = (await server.instanceStats()).map((s) => s.refresh_requests);
    assert.ok(perInstance.length === 2 && perInstance.every((n) => n > 0), `refreshes per instance: ${perInstance}`);
  }
  for (const tab of tabs) assert.deepEqual(tab.pageErrors, []);
});
