// One tab against the real server with 4-second access tokens: login and claims, silent
// refresh over several lifetimes, restore on reload, and no token in any storage.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import {
  apiCall,
  assertNoTokenExposed,
  claims,
  events,
  gotoDemo,
  launchBrowser,
  login,
  newContext,
  openDemo,
  state,
  waitForEvents,
} from "./helpers/browser.mjs";
import { startServer } from "./helpers/server.mjs";

const TTL = 4; // seconds: a token is refreshed 1.5–2 s after it arrives (half its lifetime, minus up to 25% jitter)

let server;
let browser;
let context;

before(async () => {
  [server, browser] = await Promise.all([startServer({ name: "session", accessTtl: TTL }), launchBrowser()]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});
beforeEach(async () => {
  await context?.close();
  await server.reset();
  context = await newContext(browser);
});

test("login returns the demo user's claims and /api/me accepts the token", async () => {
  const page = await openDemo(context, server.url);
  assert.equal(await state(page), "signedOut");
  assert.equal(await page.evaluate(() => window.demo.restored), false, "no session before login");

  const before = Date.now();
  const c = await login(page);
  assert.equal(c.sub, "demo");
  assert.equal(c.name, "demo");
  assert.deepEqual(c.roles, ["user"]);
  assert.equal(c.aud, "wasm-token-manager-demo");
  assert.equal(c.iss, server.url);
  assert.equal(c.exp - c.iat, TTL);
  assert.equal(typeof c.jti, "string");
  assert.deepEqual(await claims(page), c, "claims() is the token login resolved with");

  assert.equal(await state(page), "signedIn");
  const { expiresAt, refreshAt } = await page.evaluate(() => ({
    expiresAt: window.demo.auth.expiresAt(),
    refreshAt: window.demo.auth.refreshAt(),
  }));
  // Expiry on the local clock: receipt time + expires_in.
  assert.ok(expiresAt > before && expiresAt <= Date.now() + TTL * 1000, `expiresAt ${expiresAt - before} ms after login`);
  // Refresh half a lifetime before expiry, plus up to 25% of that lead as jitter.
  const lead = expiresAt - refreshAt;
  assert.ok(lead >= (TTL * 1000) / 2 - 5 && lead <= (TTL * 1000 * 5) / 8 + 5, `refresh lead ${lead} ms`);

  assert.deepEqual((await events(page, "login")).map((e) => e.detail.source), ["login"]);
  const me = await apiCall(page);
  assert.equal(me.status, 200);
  assert.equal(me.body.sub, "demo");
  assert.equal(me.body.jti, c.jti, "auth.fetch attached the current token");

  const stats = await server.stats();
  assert.equal(stats.login, 1);
  // The page's restore() on load tried the cookie once (there was none: 401); login needs none.
  assert.equal(stats.refresh_requests, 1);
  assert.equal(stats.rotations, 0);
  await assertNoTokenExposed(context, { expectCookie: true });
  assert.deepEqual(page.pageErrors, []);
});

test("silent refresh keeps /api/me answering 200 over three token lifetimes", async () => {
  const page = await openDemo(context, server.url);
  const first = await login(page);
  const loggedInAt = Date.now();
  // Call the API every 150 ms for three lifetimes, as an application would.
  await page.evaluate(() => {
    window.calls = [];
    window.stopCalls = false;
    (async () => {
      while (!window.stopCalls) {
        const at = Date.now();
        try {
          const response = await window.demo.auth.fetch("/api/me");
          const body = await response.json().catch(() => null);
          window.calls.push({ at, status: response.status, jti: body?.jti });
        } catch (e) {
          window.calls.push({ at, error: e.code ?? String(e) });
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
  });
  await page.waitForFunction(
    ({ until }) => window.calls.length > 0 && window.calls.at(-1).at >= until,
    { until: loggedInAt + 3 * TTL * 1000 },
    { timeout: 3 * TTL * 1000 + 15_000, polling: 100 },
  );
  const calls = await page.evaluate(() => {
    window.stopCalls = true;
    return window.calls;
  });

  const failed = calls.filter((c) => c.status !== 200);
  assert.deepEqual(failed, [], "every call answered 200");
  assert.ok(calls.length >= 20, `${calls.length} calls`);
  // Each token is replaced before it expires, so three lifetimes span at least four tokens.
  const jtis = new Set(calls.map((c) => c.jti));
  assert.ok(jtis.size >= 4, `the calls used ${jtis.size} tokens`);
  assert.ok(jtis.has(first.jti));

  const refreshes = await events(page, "refresh");
  assert.ok(refreshes.length >= 3, `${refreshes.length} refreshes`);
  assert.ok(refreshes.every((e) => e.detail.source === "refresh"));
  const errors = (await events(page, "error")).filter((e) => e.at >= loggedInAt);
  assert.deepEqual(errors, [], "no refresh failed after login");
  assert.deepEqual(await events(page, "expired"), []);
  const stats = await server.stats();
  assert.equal(stats.login, 1, "no second login");
  assert.equal(stats.refresh_failed, 1, "only restore()'s cookie-less attempt on page load");
  assert.equal(stats.reuse_detected, 0);
  assert.equal(stats.refresh_requests, stats.rotations + 1, "every refresh after login rotated");
  await assertNoTokenExposed(context, { expectCookie: true });
  assert.deepEqual(page.pageErrors, []);
});

test("a reload restores the session through the rotated refresh cookie", async () => {
  const page = await openDemo(context, server.url);
  const first = await login(page);
  // Wait for one rotation, so the restore has to use the cookie the refresh set.
  await waitForEvents(page, "refresh", { detail: { source: "refresh" } });
  const beforeReload = await server.stats();
  assert.equal(beforeReload.rotations, 1);

  await gotoDemo(page, server.url); // a reload: the page, its wasm and its memory start over
  assert.equal(await page.evaluate(() => window.demo.restored), true, "restore() resolved true");
  assert.deepEqual((await events(page, "login")).map((e) => e.detail.source), ["restore"]);
  const restored = await claims(page);
  assert.equal(restored.sub, "demo");
  assert.equal(restored.sid, first.sid, "the same session (refresh family)");
  assert.notEqual(restored.jti, first.jti, "a new access token");
  assert.equal((await apiCall(page)).status, 200);

  // The restored session keeps refreshing silently.
  await waitForEvents(page, "refresh", { detail: { source: "refresh" } });
  assert.equal((await apiCall(page)).status, 200);
  const stats = await server.stats();
  assert.equal(stats.login, 1, "no new login");
  assert.equal(stats.reuse_detected, 0);
  assert.equal(stats.refresh_failed, 1, "only the first page load's cookie-less restore()");
  await assertNoTokenExposed(context, { expectCookie: true });
  assert.deepEqual(page.pageErrors, []);
});

test("no token in localStorage, sessionStorage, IndexedDB, the Cache API or document.cookie at any point", async () => {
  // The storage watch (helpers/browser.mjs) records every storage write from the first script
  // on and samples the stores every 100 ms; assertNoTokenExposed checks it and reads them all.
  const page = await openDemo(context, server.url);
  await assertNoTokenExposed(context, { expectCookie: false });

  await login(page);
  await assertNoTokenExposed(context, { expectCookie: true });

  await waitForEvents(page, "refresh", { detail: { source: "refresh" } });
  await assertNoTokenExposed(context, { expectCookie: true });

  await gotoDemo(page, server.url);
  assert.equal(await state(page), "signedIn");
  await assertNoTokenExposed(context, { expectCookie: true });

  const second = await openDemo(context, server.url);
  assert.equal(await state(second), "signedIn");
  await waitForEvents(second, "refresh");
  await assertNoTokenExposed(context, { expectCookie: true });

  await page.evaluate(() => window.demo.auth.logout());
  await waitForEvents(second, "logout", { detail: { origin: "otherTab" } });
  await assertNoTokenExposed(context, { expectCookie: false });
  assert.ok(context.issuedTokens.size >= 3, `${context.issuedTokens.size} tokens were searched for`);
  assert.deepEqual([...page.pageErrors, ...second.pageErrors], []);
});

test("the storage checks fail when a page writes to storage (they are not vacuous)", async () => {
  const page = await openDemo(context, server.url);
  await login(page);
  await assertNoTokenExposed(context, { expectCookie: true });
  for (const write of [
    () => localStorage.setItem("k", "v"),
    () => sessionStorage.setItem("k", "v"),
    () => {
      document.cookie = "k=v; path=/";
    },
    () =>
      new Promise((done) => {
        const r = indexedDB.open("db");
        r.onsuccess = () => done(r.result.close());
      }),
    () => caches.open("c"),
  ]) {
    await page.evaluate(write);
    await assert.rejects(assertNoTokenExposed(context, { expectCookie: true }), assert.AssertionError, String(write));
    // Undo it and empty the watch's record.
    await page.evaluate(async () => {
      localStorage.clear();
      sessionStorage.clear();
      document.cookie = "k=; max-age=0; path=/";
      await new Promise((done) => {
        const r = indexedDB.deleteDatabase("db");
        r.onsuccess = r.onerror = done;
      });
      await caches.delete("c");
      window.__storageWatch.writes.length = 0;
      window.__storageWatch.samples.length = 0;
    });
    await assertNoTokenExposed(context, { expectCookie: true });
  }
});
