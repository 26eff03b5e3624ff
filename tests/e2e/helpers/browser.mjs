// The system Chromium through playwright-core (never a downloaded browser), the demo page with
// options for lifetimes of seconds, and the checks every spec shares: events with deadlines,
// what each storage holds, and the refresh cookie's attributes.

import assert from "node:assert/strict";
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
}

/**
 * Page options for a token of a few seconds: quick backoff so recovery after a failure window
 * takes well under a second, and a budget above the ~40 refreshes a minute a 4 s token needs
 * (the default of 12 would throttle them).
 */
export const FAST = { retryBase: 200, retryCap: 1500, retryBudget: 120 };

// Installed before any page script: records every write to a storage API, and samples the
// synchronous stores every 100 ms, so "no token in any storage" holds at every moment, not only
// when a test looks. The original cookie getter is used so the sampler itself is not counted.
const STORAGE_WATCH = () => {
  // about:blank (a new tab before its first navigation) has no storage to watch.
  if (!location.protocol.startsWith("http")) return;
  const writes = [];
  const samples = [];
  Object.defineProperty(window, "__storageWatch", { value: { writes, samples } });
  const note = (what) => writes.push({ what, at: Date.now() });
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (key, value) {
    note(`${this === window.localStorage ? "localStorage" : "sessionStorage"}.setItem(${key})`);
    return setItem.call(this, key, value);
  };
  const idbOpen = IDBFactory.prototype.open;
  IDBFactory.prototype.open = function (name, ...rest) {
    note(`indexedDB.open(${name})`);
    return idbOpen.call(this, name, ...rest);
  };
  if (typeof CacheStorage !== "undefined") {
    const cacheOpen = CacheStorage.prototype.open;
    CacheStorage.prototype.open = function (name) {
      note(`caches.open(${name})`);
      return cacheOpen.call(this, name);
    };
  }
  const cookie = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
  Object.defineProperty(Document.prototype, "cookie", {
    configurable: true,
    enumerable: cookie.enumerable,
    get() {
      return cookie.get.call(this);
    },
    set(value) {
      note(`document.cookie = ${String(value).split("=")[0]}=…`);
      cookie.set.call(this, value);
    },
  });
  setInterval(() => {
    const seen = [];
    if (localStorage.length) seen.push(`localStorage has ${localStorage.length}`);
    if (sessionStorage.length) seen.push(`sessionStorage has ${sessionStorage.length}`);
    const jar = cookie.get.call(document);
    if (jar) seen.push(`document.cookie is ${jar.split("=")[0]}=…`);
    if (seen.length) samples.push({ seen, at: Date.now() });
  }, 100);
};

// Installed before any page script: every Content-Security-Policy violation becomes a console
// error with a fixed prefix, so the node side sees it even if Chromium's own report changes.
const CSP_WATCH = () => {
  document.addEventListener("securitypolicyviolation", (e) => {
    console.error(`csp-violation: ${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
  });
};

/** True for a console message that reports a Content-Security-Policy violation. */
function isCspViolation(message) {
  const text = message.text();
  return text.startsWith("csp-violation:") || /Content Security Policy/i.test(text);
}

/**
 * A fresh context (own cookie jar) with the storage watch, a record of every token issued,
 * and `context.cspViolations`: every Content-Security-Policy violation of any of its pages.
 */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext(options);
  await context.addInitScript(STORAGE_WATCH);
  await context.addInitScript(CSP_WATCH);
  context.cspViolations = [];
  // Uncaught exceptions of every tab, including those the page opens itself.
  context.on("page", (page) => {
    page.pageErrors = [];
    page.on("pageerror", (e) => page.pageErrors.push(e.message));
    page.on("console", (m) => {
      if (isCspViolation(m)) context.cspViolations.push(`${page.url()}: ${m.text()}`);
    });
  });
  // The tokens the server hands out, read from the network (never from the page, which cannot
  // read them: exposeToken is off), so the storage checks can search for them.
  context.issuedTokens = new Set();
  context.on("response", async (response) => {
    const path = new URL(response.url()).pathname;
    if ((path === "/auth/login" || path === "/auth/refresh") && response.status() === 200) {
      try {
        const body = await response.json();
        if (typeof body.access_token === "string") context.issuedTokens.add(body.access_token);
      } catch {
        // The page went away before the body could be read.
      }
    }
  });
  return context;
}

export function demoUrl(base, params = FAST) {
  const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
  return `${base}/?${query}`;
}

/** Opens the demo page and waits for `restore()` to settle. */
export async function openDemo(context, base, params = FAST) {
  const page = await context.newPage();
  await gotoDemo(page, base, params);
  return page;
}

/** Loads the demo into `page` (also a reload) and waits for `restore()` to settle. */
export async function gotoDemo(page, base, params = FAST) {
  await page.goto(demoUrl(base, params));
  await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 15_000, polling: 50 });
}

/**
 * Clicks in `page` after bringing it to the front: Playwright's actionability checks wait for
 * animation frames, which a background tab runs slowly.
 */
export async function click(page, selector) {
  await page.bringToFront();
  await page.click(selector);
}

/** Signs in through the API of the page's manager and returns the claims. */
export function login(page, user = { username: "demo", password: "demo-password" }) {
  return page.evaluate((u) => window.demo.auth.login(u), user);
}

/** Events the page's manager dispatched so far: [{ type, detail, at, jti }]. */
export function events(page, type) {
  return page.evaluate((t) => window.demo.events.filter((e) => !t || e.type === t), type);
}

/**
 * Waits until the page's manager has dispatched `count` events of `type` (optionally matching
 * `detail`), with a deadline. Returns them.
 */
export async function waitForEvents(page, type, { count = 1, detail = {}, since = 0, timeout = 15_000 } = {}) {
  const arg = { type, count, detail, since };
  await page.waitForFunction(
    ({ type, count, detail, since }) =>
      window.demo.events.filter(
        (e) => e.type === type && e.at >= since && Object.entries(detail).every(([k, v]) => e.detail[k] === v),
      ).length >= count,
    arg,
    { timeout, polling: 50 },
  );
  return page.evaluate(
    ({ type, detail, since }) =>
      window.demo.events.filter(
        (e) => e.type === type && e.at >= since && Object.entries(detail).every(([k, v]) => e.detail[k] === v),
      ),
    arg,
  );
}

/**
 * The answer to the page's next logout request. Start waiting before the click that sends it:
 * the page says signedOut at once, and only this answer clears the refresh cookie and tells
 * that the server ended the session.
 */
export function nextLogoutAnswer(page) {
  return page.waitForResponse(
    (r) => new URL(r.url()).pathname === "/auth/logout" && r.request().method() === "POST",
    { timeout: 10_000 },
  );
}

/** `auth.fetch(path)` in the page: { status, body } or { error: code }. */
export function apiCall(page, path = "/api/me") {
  return page.evaluate(async (p) => {
    try {
      const response = await window.demo.auth.fetch(p);
      return { status: response.status, body: await response.json().catch(() => null) };
    } catch (e) {
      return { error: e.code ?? String(e) };
    }
  }, path);
}

/** Everything JavaScript on the page can read that could hold a token. */
export function readStorage(page) {
  return page.evaluate(async () => {
    const dump = (s) => Object.fromEntries(Array.from({ length: s.length }, (_, i) => [s.key(i), s.getItem(s.key(i))]));
    return {
      localStorage: dump(localStorage),
      sessionStorage: dump(sessionStorage),
      cookie: document.cookie,
      indexedDB: (await indexedDB.databases()).map((d) => d.name),
      caches: await caches.keys(),
      watch: window.__storageWatch,
    };
  });
}

/**
 * No token anywhere the page's JavaScript can reach, now or at any earlier moment the watch
 * recorded, and not in the DOM; the refresh cookie only in the browser's jar, with the
 * attributes of the contract.
 */
export async function assertNoTokenExposed(context, { expectCookie }) {
  const tokens = [...context.issuedTokens];
  // The signature segment is unique to each token; finding it anywhere means a leak.
  const needles = tokens.flatMap((t) => [t, t.split(".")[2]]).filter(Boolean);
  for (const page of context.pages()) {
    if (page.isClosed() || !page.url().startsWith("http")) continue;
    const where = page.url();
    const s = await readStorage(page);
    assert.deepEqual(s.localStorage, {}, `localStorage of ${where}`);
    assert.deepEqual(s.sessionStorage, {}, `sessionStorage of ${where}`);
    assert.equal(s.cookie, "", `document.cookie of ${where} (the refresh cookie must be HttpOnly)`);
    assert.deepEqual(s.indexedDB, [], `IndexedDB databases of ${where}`);
    assert.deepEqual(s.caches, [], `Cache API of ${where}`);
    assert.deepEqual(s.watch.writes, [], `storage writes recorded in ${where}`);
    assert.deepEqual(s.watch.samples, [], `storage contents sampled in ${where}`);
    const html = await page.content();
    for (const needle of needles) {
      assert.ok(!html.includes(needle), `a token is in the DOM of ${where}`);
      assert.ok(!JSON.stringify(s).includes(needle), `a token is in the storage of ${where}`);
    }
  }
  const cookies = await context.cookies();
  if (!expectCookie) {
    assert.deepEqual(cookies.map((c) => c.name), [], "no cookie once signed out");
    return;
  }
  assert.equal(cookies.length, 1, `exactly one cookie: ${cookies.map((c) => c.name)}`);
  const [c] = cookies;
  assert.equal(c.name, "__Host-refresh");
  assert.equal(c.httpOnly, true, "HttpOnly");
  assert.equal(c.secure, true, "Secure");
  assert.equal(c.sameSite, "Strict", "SameSite=Strict");
  assert.equal(c.path, "/", "Path=/");
  // Host-only: Playwright reports a Domain cookie as ".host"; a host-only one as the bare host.
  assert.equal(c.domain, "localhost", "host-only (no Domain attribute)");
  assert.ok(c.expires > Date.now() / 1000, "persistent, not yet expired");
  for (const token of tokens) assert.notEqual(c.value, token, "the cookie is not an access token");
}

/** Claims of the token the page currently holds (decoded by the manager), or null. */
export function claims(page) {
  return page.evaluate(() => window.demo.auth.claims());
}

export function state(page) {
  return page.evaluate(() => window.demo.auth.state);
}

/** The policy the reference server sends with the demo, and `vite preview` with the example. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** Asserts that `response` (a page navigation) carries the strict policy and no-referrer. */
export function assertStrictHeaders(response) {
  const headers = response.headers();
  assert.equal(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
  assert.equal(headers["referrer-policy"], "no-referrer");
}
