// Two promises for tabs of one browser profile (one context, one cookie jar), against the real
// server with tokens of a few seconds:
// - the idle timeout: key presses in one tab keep every tab signed in; without activity every tab
//   gets the `idle` warning, then signs out with reason `idle`, and the server's session is revoked
//   (silent refreshes meanwhile do not count as activity);
// - the cross-tab refresh lock cannot deadlock: a tab holding it that never lets go (a frozen
//   tab, a page paused in a debugger) delays another tab's refresh by requestTimeoutMs + 1 s at
//   most, after which that tab takes the lock over (Web Locks `steal`).

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { FAST, events, gotoDemo, launchBrowser, login, newContext, openDemo, state, waitForEvents } from "./helpers/browser.mjs";
import { startServer } from "./helpers/server.mjs";

let server;
let browser;
let context;

// Idle: tokens of 3 s (a refresh about every 2 s), sign out after 4 s without activity, warn 2 s
// before. The driver forwards at most one activity a second, so the logout comes 3–4 s after the
// last key press; CLOCK_SLACK covers timers of a loaded machine.
const TTL = 3;
const IDLE = { ...FAST, refreshLeadSeconds: 1, idleTimeoutSeconds: 4, idleWarningSeconds: 2 };
const CLOCK_SLACK_MS = 1500;

before(async () => {
  [server, browser] = await Promise.all([startServer({ name: "idle-and-lock", accessTtl: TTL }), launchBrowser()]);
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

test("key presses in one tab keep both tabs signed in; without them both are warned, then signed out for idleness", async () => {
  const a = await openDemo(context, server.url, IDLE);
  await login(a);
  const b = await openDemo(context, server.url, IDLE);
  assert.equal(await b.evaluate(() => window.demo.restored), true, "the second tab adopted the session");
  const refreshesBefore = (await server.stats()).refresh_requests;

  // Seven seconds of typing in tab A only: longer than the idle timeout, in both tabs.
  await a.bringToFront();
  const typingUntil = Date.now() + 7000;
  let lastKey = 0;
  while (Date.now() < typingUntil) {
    await a.keyboard.press("Shift");
    lastKey = Date.now();
    await new Promise((r) => setTimeout(r, 300));
  }
  for (const [name, page] of [["A", a], ["B", b]]) {
    assert.deepEqual(await events(page, "idle"), [], `tab ${name} was never warned while the user typed in A`);
    assert.deepEqual(await events(page, "logout"), [], `tab ${name} is still signed in`);
    assert.ok(["signedIn", "refreshing"].includes(await state(page)), `tab ${name}: ${await state(page)}`);
  }
  assert.ok((await server.stats()).refresh_requests - refreshesBefore >= 2, "tokens were refreshed meanwhile");

  // Then nothing: both tabs warn, then sign out, although refreshes go on until then.
  for (const [name, page] of [["A", a], ["B", b]]) {
    const [logout] = await waitForEvents(page, "logout", { since: lastKey, timeout: 10_000 });
    const [idle] = await events(page, "idle");
    assert.ok(idle, `tab ${name} was warned`);
    assert.equal(logout.detail.reason, "idle", `tab ${name}`);
    assert.ok(idle.at < logout.at, `tab ${name}: the warning comes first`);
    assert.ok(Math.abs(idle.detail.logoutAt - idle.at - 2000) < CLOCK_SLACK_MS, `tab ${name}: logoutAt is 2 s after the warning`);
    const quiet = logout.at - lastKey;
    assert.ok(quiet >= 3000 - 100 && quiet <= 4000 + CLOCK_SLACK_MS, `tab ${name} signed out ${quiet} ms after the last key`);
    assert.equal(await state(page), "signedOut", `tab ${name}`);
    assert.equal(await page.evaluate(() => window.demo.auth.claims()), null, `tab ${name}`);
  }
  const origins = [(await events(a, "logout"))[0].detail.origin, (await events(b, "logout"))[0].detail.origin];
  assert.ok(origins.includes("local"), `one tab timed out itself: ${origins}`);

  // The server was told: the refresh cookie is revoked and a reload finds no session.
  await waitFor(async () => (await server.stats()).logout >= 1, "the idle logout reached the server");
  await gotoDemo(b, server.url, IDLE);
  assert.equal(await b.evaluate(() => window.demo.restored), false);
  for (const page of [a, b]) assert.deepEqual(page.pageErrors, []);
});

test("activity after the idle warning cancels the logout in both tabs and fires active", async () => {
  const a = await openDemo(context, server.url, IDLE);
  await login(a);
  const b = await openDemo(context, server.url, IDLE);
  await waitForEvents(b, "idle", { timeout: 10_000 });
  await waitForEvents(a, "idle", { timeout: 10_000 });
  await b.bringToFront();
  await b.mouse.click(5, 5);
  await waitForEvents(b, "active");
  await waitForEvents(a, "active");
  for (const [name, page] of [["A", a], ["B", b]]) {
    assert.deepEqual(await events(page, "logout"), [], `tab ${name} was not signed out`);
    assert.ok(["signedIn", "refreshing"].includes(await state(page)), `tab ${name}`);
  }
  // Still idle after that one click: the second warning, and the logout, come in due course.
  for (const page of [a, b]) await waitForEvents(page, "logout", { detail: { reason: "idle" }, timeout: 10_000 });
});

// Lock: tokens of 10 s refreshed 5–6.25 s before expiry (at most half the lifetime: 5 s), a
// request timeout of 1 s, so a tab that waits for the lock takes it over after 2 s, well before
// the token runs out (leeway 1 s); without the takeover its refreshes time out one after the
// other until it does.
const LOCK = { ...FAST, refreshLeadSeconds: 5, requestTimeoutMs: 1000 };
const LOCK_TTL = 10;
const TAKEOVER_MS = LOCK.requestTimeoutMs + 1000;

test("a lock held forever by a frozen tab delays a refresh by requestTimeoutMs + 1 s at most", async () => {
  await context.close();
  await server.stop();
  server = await startServer({ name: "idle-and-lock-frozen", accessTtl: LOCK_TTL });
  context = await newContext(browser);
  const b = await openDemo(context, server.url, LOCK);
  await login(b);
  const since = Date.now();
  const before = await server.stats();
  // Another tab of the origin takes the refresh lock and never gives it back.
  const frozen = await context.newPage();
  await frozen.goto(`${server.url}/no-such-page`);
  const lockName = await frozen.evaluate(async () => {
    const name = `wasm-token-manager:${new URL("/auth/refresh", location.href).href}`;
    // Stolen later: the rejection is expected.
    navigator.locks.request(name, () => new Promise(() => {})).catch(() => {});
    for (;;) {
      const { held } = await navigator.locks.query();
      if (held.some((l) => l.name === name)) return name;
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  assert.match(lockName, /^wasm-token-manager:http/);

  const [refresh] = await waitForEvents(b, "refresh", { since, timeout: 2 * LOCK_TTL * 1000 });
  assert.equal(refresh.detail.source, "refresh");
  const started = (await events(b, "statechange")).filter((e) => e.detail.to === "refreshing" && e.at <= refresh.at).at(-1);
  const waited = refresh.at - started.at;
  assert.ok(waited <= TAKEOVER_MS + CLOCK_SLACK_MS, `the refresh took ${waited} ms from its start`);
  assert.ok(waited >= TAKEOVER_MS - 100, `it waited for the lock first (${waited} ms)`);
  assert.deepEqual(await events(b, "expired"), [], "the token never ran out");
  assert.deepEqual(await events(b, "error"), [], "no refresh timed out");
  const stats = await server.stats();
  assert.equal(stats.refresh_requests - before.refresh_requests, 1, "one refresh request");
  assert.deepEqual(b.pageErrors, []);
});

test("a tab whose refresh request never settles holds the lock for requestTimeoutMs, then the other tab refreshes", async () => {
  await context.close();
  await server.stop();
  server = await startServer({ name: "idle-and-lock-hang", accessTtl: LOCK_TTL });
  context = await newContext(browser);
  const a = await openDemo(context, server.url, LOCK);
  await login(a);
  const b = await openDemo(context, server.url, LOCK);
  assert.equal(await b.evaluate(() => window.demo.restored), true, "B adopted A's session");
  const since = Date.now();
  const before = await server.stats();
  // A fetched the token, so A refreshes first, and its requests never get an answer: A holds the
  // lock while each one runs, until its own request timeout aborts it, again and again.
  await a.route("**/auth/refresh", () => {});
  const [refresh] = await waitForEvents(b, "refresh", { since, detail: { source: "refresh" }, timeout: 2 * LOCK_TTL * 1000 });
  const started = (await events(b, "statechange")).filter((e) => e.detail.to === "refreshing" && e.at <= refresh.at).at(-1);
  const waited = refresh.at - started.at;
  assert.ok(waited <= LOCK.requestTimeoutMs + CLOCK_SLACK_MS, `B's refresh took ${waited} ms from its start`);
  await waitForEvents(a, "refresh", { since, detail: { source: "otherTab" } });
  assert.ok((await events(a, "error")).some((e) => e.detail.code === "timeout"), "A's requests timed out");
  for (const [name, page] of [["A", a], ["B", b]]) {
    assert.deepEqual(await events(page, "expired"), [], `tab ${name} never lost its token`);
    assert.deepEqual(page.pageErrors, []);
  }
  const stats = await server.stats();
  assert.equal(stats.rotations - before.rotations, 1, "one rotation, B's");
});

async function waitFor(check, what, timeout = 5000) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
