// Three server instances on one Redis behind nginx (the shared-store mode of the harness,
// TOKEN_SERVER_E2E_SHARED=1): an instance killed mid-run and a Redis restart (append-only file,
// fsync always) under live tabs lose no session and sign no tab out. Skipped in the default
// mode, where there is one instance and no Redis.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  FAST,
  apiCall,
  assertNoTokenExposed,
  events,
  launchBrowser,
  login,
  newContext,
  openDemo,
  waitForEvents,
} from "./helpers/browser.mjs";
import { SHARED, startServer } from "./helpers/server.mjs";

const TTL = 4;
const PARAMS = { ...FAST, refreshLeadSeconds: 1 };

let server;
let browser;

before(async () => {
  if (!SHARED) return;
  [server, browser] = await Promise.all([startServer({ name: "shared-store", accessTtl: TTL }), launchBrowser()]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Two more refreshes in every tab after `since`: the session goes on. */
async function refreshesGoOn(tabs, since) {
  const seen = await Promise.all(
    tabs.map((t) => waitForEvents(t, "refresh", { since, count: 2, timeout: 4 * TTL * 1000 })),
  );
  return Math.max(...seen.map((list) => list.at(-1).at));
}

test(
  "an instance killed mid-run and a Redis restart under live tabs lose no session and sign no tab out",
  { skip: !SHARED && "needs the shared-store mode (TOKEN_SERVER_E2E_SHARED=1, scripts/test.sh)" },
  async () => {
    const context = await newContext(browser);
    const tabs = [await openDemo(context, server.url, PARAMS)];
    await login(tabs[0]);
    const [signedIn] = await waitForEvents(tabs[0], "login");
    tabs.push(await openDemo(context, server.url, PARAMS));
    let since = await refreshesGoOn(tabs, signedIn.at);

    // An instance dies without a graceful shutdown; nginx still lists it until a connection to
    // it fails, then sends that request to the next one.
    await server.killInstance(1);
    since = await refreshesGoOn(tabs, since);

    // Redis restarts (a refresh that comes while it is down answers 503 with Retry-After and
    // the tab keeps its valid token); the session, rotated before the restart, is still there.
    await server.restartRedis();
    since = await refreshesGoOn(tabs, since);

    for (const [i, tab] of tabs.entries()) {
      assert.equal((await apiCall(tab)).status, 200, `tab ${i}`);
      assert.deepEqual(await events(tab, "logout"), [], `tab ${i} was not signed out`);
      // Tab 1 hears of tab 0's sign-in (source otherTab); a new sign-in would be a tab's own.
      const logins = (await events(tab, "login")).filter((e) => e.at > signedIn.at && e.detail.source !== "otherTab");
      assert.deepEqual(logins, [], `tab ${i}: nobody signed in again`);
      assert.deepEqual(await events(tab, "expired"), [], `tab ${i} never lost its token`);
      for (const e of await events(tab, "error")) {
        assert.equal(e.detail.tokenValid, true, `tab ${i}: a failed refresh kept the token`);
      }
      assert.deepEqual(tab.pageErrors, []);
    }
    const stats = await server.stats();
    assert.equal(stats.reuse_detected, 0, "no rotation was mistaken for theft");
    await assertNoTokenExposed(context, { expectCookie: true });
    await context.close();
  },
);
