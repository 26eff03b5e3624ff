// Several tabs of one browser profile (one context, one cookie jar) share one session: new tabs
// adopt the token from a sibling, each token is replaced by exactly one refresh request between
// all of them (Web Locks + BroadcastChannel), and a logout in one tab signs out the others.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import {
  FAST,
  assertNoTokenExposed,
  click,
  events,
  gotoDemo,
  launchBrowser,
  login,
  newContext,
  nextLogoutAnswer,
  openDemo,
  state,
  waitForEvents,
} from "./helpers/browser.mjs";
import { startServer } from "./helpers/server.mjs";

// Timing of these specs. A token lives TTL = 4 s. With refreshLeadSeconds = 1 the lead is
// min(max(1 s, 20% of 4 s), 50% of 4 s) = 1 s, and each tab adds a random 0–25% of it, so a
// token is due for refresh between 2.75 s and 3.0 s after it arrived (core::schedule). Between
// all tabs there is therefore one refresh request per token, one every 2.75–3 s plus the
// request's own latency: "one per lifetime" means one per token, since a token is always
// replaced before it expires.
const TTL = 4;
const LEAD = 1;
const PARAMS = { ...FAST, refreshLeadSeconds: LEAD };
const MIN_TOKEN_AGE_MS = (TTL - LEAD * 1.25) * 1000; // 2750: no token is replaced sooner
const CLOCK_SLACK_MS = 100; // timers and clocks of different tabs, same machine
const GENERATIONS = 3; // tokens counted after the first quiet point

let server;
let browser;
let context;

before(async () => {
  [server, browser] = await Promise.all([startServer({ name: "tabs", accessTtl: TTL }), launchBrowser()]);
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

/** The jti each tab holds now. */
function heldTokens(tabs) {
  return Promise.all(tabs.map((t) => t.evaluate(() => window.demo.auth.claims()?.jti ?? null)));
}

/**
 * Waits (deadline: two token lifetimes) until every tab holds the same token and it is not in
 * `seen`; returns its jti. Right after that moment no refresh is due for at least 2.75 s: a
 * quiet point at which the server's counters can be read without a request in flight.
 */
async function waitForSharedNewToken(tabs, seen) {
  const deadline = Date.now() + 2 * TTL * 1000;
  for (;;) {
    const held = await heldTokens(tabs);
    if (held[0] && !seen.has(held[0]) && held.every((j) => j === held[0])) return held[0];
    if (Date.now() > deadline) {
      throw new Error(`no new token shared by all ${tabs.length} tabs within ${2 * TTL} s: ${held.join(", ")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Token events of every tab: [{ tab, type, source, jti, at }]. */
async function tokenEvents(tabs) {
  const perTab = await Promise.all(
    tabs.map((t) =>
      t.evaluate(() =>
        window.demo.events
          .filter((e) => e.type === "login" || e.type === "refresh")
          .map((e) => ({ type: e.type, source: e.detail.source, jti: e.jti, at: e.at })),
      ),
    ),
  );
  return perTab.flatMap((list, tab) => list.map((e) => ({ tab, ...e })));
}

async function openTabs(count) {
  const tabs = [await openDemo(context, server.url, PARAMS)];
  await login(tabs[0]);
  for (let i = 1; i < count; i++) tabs.push(await openDemo(context, server.url, PARAMS));
  return tabs;
}

for (const count of [2, 5]) {
  test(`${count} tabs make exactly one refresh request per token between them`, async () => {
    const tabs = await openTabs(count);
    for (const [i, tab] of tabs.entries()) {
      // (signedIn, or refreshing with a valid token if a refresh happens to be in flight)
      assert.equal(await tab.evaluate(() => window.demo.auth.isAuthenticated()), true, `tab ${i}`);
      if (i > 0) {
        // Adopted from a sibling over the BroadcastChannel; a restore through the cookie would
        // say "restore".
        assert.deepEqual((await events(tab, "login")).map((e) => e.detail.source), ["otherTab"], `tab ${i}`);
      }
    }

    const seen = new Set((await tokenEvents(tabs)).map((e) => e.jti));
    const first = await waitForSharedNewToken(tabs, seen);
    seen.add(first);
    const before = await server.stats();
    const counted = [];
    for (let i = 0; i < GENERATIONS; i++) {
      const jti = await waitForSharedNewToken(tabs, seen);
      seen.add(jti);
      counted.push(jti);
    }
    const afterStats = await server.stats();

    // Exactly one request per new token, counted at the server: no tab refreshed on its own,
    // no two tabs sent the same cookie (that would be a grace replay), none failed.
    assert.equal(afterStats.refresh_requests - before.refresh_requests, GENERATIONS, "refresh requests");
    assert.equal(afterStats.rotations - before.rotations, GENERATIONS, "rotations");
    assert.equal(afterStats.grace_replays, 0, "grace replays (two tabs refreshing one token)");
    assert.equal(afterStats.refresh_failed - before.refresh_failed, 0, "failed refreshes");
    // Over the whole run: the first tab's restore() on an empty jar (401), then one rotation per
    // token after login; the other tabs' restores never reached the server.
    const all = await tokenEvents(tabs);
    const distinct = new Set(all.map((e) => e.jti));
    assert.equal(afterStats.rotations, distinct.size - 1, "one rotation per token after the login's");
    assert.equal(afterStats.refresh_requests, afterStats.rotations + 1, "no request besides the rotations");

    // Each counted token: fetched by one tab, adopted by all the others.
    const byJti = (jti) => all.filter((e) => e.jti === jti && e.type === "refresh");
    for (const jti of [first, ...counted]) {
      const got = byJti(jti);
      assert.equal(got.length, count, `every tab received token ${jti}`);
      assert.equal(got.filter((e) => e.source === "refresh").length, 1, `one tab refreshed token ${jti}`);
    }
    // A second request right after another tab's (the race the lock exists to prevent) would
    // also rotate, so it would pass the counts above; the tokens' ages catch it: each token is
    // replaced no sooner than 2.75 s after it arrived, and before it expires.
    const arrivals = [first, ...counted].map((jti) => byJti(jti).find((e) => e.source === "refresh").at);
    for (let i = 1; i < arrivals.length; i++) {
      const age = arrivals[i] - arrivals[i - 1];
      assert.ok(age >= MIN_TOKEN_AGE_MS - CLOCK_SLACK_MS, `token ${i} replaced after ${age} ms (minimum ${MIN_TOKEN_AGE_MS})`);
      assert.ok(age < TTL * 1000, `token ${i} replaced after ${age} ms, not before it expired`);
    }
    await assertNoTokenExposed(context, { expectCookie: true });
    for (const tab of tabs) assert.deepEqual(tab.pageErrors, []);
  });
}

test("logging out in one tab signs out the other tabs and ends the session at the server", async () => {
  const tabs = await openTabs(3);
  await waitForEvents(tabs[2], "refresh"); // a refreshed session, so the cookie has rotated
  const lastToken = [...context.issuedTokens].at(-1);

  // The demo page's own button, in the middle tab.
  const logoutAnswer = nextLogoutAnswer(tabs[1]);
  await click(tabs[1], "#logout");
  await waitForEvents(tabs[1], "logout", { detail: { origin: "local" } });
  for (const i of [0, 2]) {
    await waitForEvents(tabs[i], "logout", { detail: { origin: "otherTab" } });
  }
  for (const [i, tab] of tabs.entries()) {
    assert.equal(await state(tab), "signedOut", `tab ${i}`);
    const after = await tab.evaluate(() => ({
      authenticated: window.demo.auth.isAuthenticated(),
      claims: window.demo.auth.claims(),
      refreshAt: window.demo.auth.refreshAt() ?? null,
    }));
    assert.deepEqual(after, { authenticated: false, claims: null, refreshAt: null }, `tab ${i}: nothing held or scheduled`);
    assert.equal(await tab.locator("#signin").isVisible(), true, `tab ${i} shows the sign-in form`);
  }
  // The tabs sign out before the logout request is answered: count it once it was.
  assert.ok((await logoutAnswer).ok(), "the server was told");
  const stats = await server.stats();
  assert.equal(stats.logout, 1);

  // The server revoked the session: the last access token is refused …
  const me = await fetch(`${server.url}/api/me`, { headers: { Authorization: `Bearer ${lastToken}` } });
  assert.equal(me.status, 401);
  // … the cookie is gone, and a reload finds no session.
  await gotoDemo(tabs[2], server.url, PARAMS);
  assert.equal(await tabs[2].evaluate(() => window.demo.restored), false);
  assert.equal(await state(tabs[2]), "signedOut");
  await assertNoTokenExposed(context, { expectCookie: false });
  for (const tab of tabs) assert.deepEqual(tab.pageErrors, []);
});
