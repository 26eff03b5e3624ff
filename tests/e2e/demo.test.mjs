// The demo page's own controls, clicked as a visitor would: sign in, call the API, break the
// server and watch it recover, open another tab, log out; the storage panel stays empty, and
// the page fits a phone screen. Screenshots go to tests/e2e/artifacts/.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  assertNoTokenExposed,
  assertStrictHeaders,
  click,
  launchBrowser,
  newContext,
  openDemo,
  waitForEvents,
} from "./helpers/browser.mjs";
import { ARTIFACTS, startServer } from "./helpers/server.mjs";

const TTL = 4;

let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([startServer({ name: "demo", accessTtl: TTL }), launchBrowser()]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Every row of the storage panel says "empty", and so does the verdict. */
async function assertStoragePanelEmpty(page) {
  await page.evaluate(async () => {
    // The panel refreshes every 2 s and on events; read it fresh.
    const { StoragePanel } = await import("/storage-panel.js");
    await new StoragePanel(document.querySelector("#storage-table tbody"), document.querySelector("#storage-verdict")).refresh();
  });
  const rows = await page.$$eval("#storage-table tr", (trs) => trs.map((tr) => [tr.dataset.store, tr.dataset.count]));
  assert.deepEqual(rows, [
    ["localStorage", "0"],
    ["sessionStorage", "0"],
    ["document.cookie", "0"],
    ["IndexedDB", "0"],
    ["Cache API", "0"],
  ]);
  assert.equal(await page.getAttribute("#storage-verdict", "data-clean"), "true");
}

/** The text of a log line of `kind` appearing after `count` lines of that kind. */
async function waitForLogLine(page, kind, pattern, timeout = 15_000) {
  await page.waitForFunction(
    ({ kind, source }) =>
      [...document.querySelectorAll(`#event-log li[data-kind="${kind}"] .text`)].some((el) =>
        new RegExp(source).test(el.textContent),
      ),
    { kind, source: pattern.source },
    { timeout, polling: 100 },
  );
}

test("the demo page's buttons work: sign in, API call, failures, second tab, log out", async () => {
  const context = await newContext(browser, { viewport: { width: 1280, height: 900 } });
  try {
    // Every page and file of the demo comes with the strict policy; the whole run below must
    // not trip it once (no inline script or style, no eval; the wasm compiles).
    const documents = [];
    context.on("response", (r) => {
      if (r.request().resourceType() === "document") documents.push(r);
    });
    const page = await openDemo(context, server.url);
    assert.equal(await page.isVisible("#signin"), true, "signed out: the form shows");
    assert.equal(await page.isDisabled("#call-api"), true);
    await assertStoragePanelEmpty(page);

    // Sign in with the prefilled demo account.
    await click(page, "#login-button");
    await page.waitForSelector("#session", { state: "visible" });
    assert.equal(await page.textContent("#user-name"), "demo");
    assert.equal(await page.getAttribute("#state-badge", "data-state"), "signedIn");
    assert.equal(await page.textContent('#claims-table tr[data-claim="sub"] td'), "demo");
    assert.equal(await page.textContent('#claims-table tr[data-claim="iss"] td'), server.url);
    await page.waitForFunction(() => /^\d+\.\d s$/.test(document.querySelector("#expires-in").textContent));
    await waitForLogLine(page, "login", /Signed in with the password/);
    await page.screenshot({ path: join(ARTIFACTS, "demo-after-login.png"), fullPage: true });

    // Call /api/me through auth.fetch.
    await click(page, "#call-api");
    await page.waitForFunction(() => document.querySelector("#api-status").textContent === "200");
    assert.match(await page.textContent("#api-body"), /"sub": "demo"/);

    // The timeline shows a refresh by this tab.
    await waitForEvents(page, "refresh", { detail: { source: "refresh" } });
    await waitForLogLine(page, "refresh", /refreshed silently by this tab/);

    // Break the server: one refresh fails with 500, the next one succeeds.
    await page.selectOption("#fail-count", "1");
    let since = Date.now();
    await click(page, "#fail-5xx");
    await waitForLogLine(page, "server", /next 1 refresh fail with 500/);
    const [err500] = await waitForEvents(page, "error", { since, detail: { code: "server_error" } });
    assert.equal(err500.detail.tokenValid, true);
    await waitForEvents(page, "refresh", { since: err500.at });
    await waitForLogLine(page, "error", /^server_error/);

    // … with 429 and Retry-After: 2.
    since = Date.now();
    await click(page, "#fail-429");
    await waitForLogLine(page, "server", /fail with 429 \(Retry-After 2 s\)/);
    const [err429] = await waitForEvents(page, "error", { since, detail: { code: "rate_limited" } });
    assert.ok(err429.detail.retryInMs >= 2000, `retry in ${err429.detail.retryInMs} ms`);
    await waitForEvents(page, "refresh", { since: err429.at });

    // … lose the next response: the server's grace window answers the retry.
    await click(page, "#drop-next");
    await waitForLogLine(page, "server", /next refresh response will be lost/);
    await page.waitForFunction(
      () => document.querySelector('#server-stats [data-stat="grace_replays"]').textContent === "1",
      null,
      { timeout: 15_000, polling: 100 },
    );
    await click(page, "#clear-switches");
    await waitForLogLine(page, "server", /no failure armed/);
    assert.equal(await page.getAttribute("#state-badge", "data-state").then((s) => s === "signedIn" || s === "refreshing"), true);
    assert.equal((await server.stats()).login, 1, "never signed in again");

    // Open another tab: it adopts the session from this one.
    const [second] = await Promise.all([context.waitForEvent("page"), click(page, "#open-tab")]);
    await second.waitForFunction(() => window.demo?.ready === true, null, { timeout: 15_000, polling: 50 });
    assert.deepEqual((await waitForEvents(second, "login")).map((e) => e.detail.source), ["otherTab"]);
    await second.waitForSelector("#session", { state: "visible" });
    await page.waitForFunction(() => document.querySelector("#tab-count").textContent === "2 tabs");
    await second.waitForFunction(() => document.querySelector("#tab-count").textContent === "2 tabs");
    await waitForEvents(second, "refresh");
    await assertStoragePanelEmpty(page);
    await assertStoragePanelEmpty(second);
    await assertNoTokenExposed(context, { expectCookie: true });

    // Log out in the second tab: both show the sign-in form.
    await click(second, "#logout");
    for (const tab of [page, second]) {
      await tab.waitForSelector("#signin", { state: "visible" });
      assert.equal(await tab.getAttribute("#state-badge", "data-state"), "signedOut");
      assert.equal(await tab.textContent("#claims-table tbody"), "Sign in to see the claims.");
    }
    await waitForLogLine(page, "logout", /Signed out in another tab/);
    await assertStoragePanelEmpty(page);
    await assertNoTokenExposed(context, { expectCookie: false });
    assert.deepEqual([...page.pageErrors, ...second.pageErrors], []);
    assert.ok(documents.length >= 2, "both tabs' documents were seen");
    for (const response of documents) assertStrictHeaders(response);
    assert.deepEqual(context.cspViolations, [], "no Content-Security-Policy violation");
  } finally {
    await context.close();
  }
});

test("the demo page fits a phone-width screen", async () => {
  const context = await newContext(browser, { viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
  try {
    const page = await openDemo(context, server.url);
    await click(page, "#login-button");
    await page.waitForSelector("#session", { state: "visible" });
    await click(page, "#call-api");
    await page.waitForFunction(() => document.querySelector("#api-status").textContent === "200");
    await waitForEvents(page, "refresh");
    const overflow = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      // Cards wider than the viewport would be clipped or scroll sideways.
      cards: [...document.querySelectorAll(".card, .masthead")]
        .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
        .map((el) => el.id || el.className),
    }));
    assert.deepEqual(overflow, { page: 0, cards: [] }, "nothing wider than the screen");
    // One column: the actions come right after the session.
    const order = await page.evaluate(() =>
      ["#session", "#actions", "#claims", "#storage", "#log"].map((s) => Math.round(document.querySelector(s).getBoundingClientRect().top)),
    );
    assert.deepEqual([...order].sort((a, b) => a - b), order, `cards stacked in order: ${order}`);
    await page.screenshot({ path: join(ARTIFACTS, "demo-phone.png"), fullPage: true });
    assert.deepEqual(page.pageErrors, []);
    assert.deepEqual(context.cspViolations, [], "no Content-Security-Policy violation");
  } finally {
    await context.close();
  }
});
