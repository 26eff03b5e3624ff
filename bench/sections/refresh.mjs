// 6. Refresh requests per token lifetime with 1, 2 and 5 tabs (counted by the server), and the
// time from wake to a fresh token. Each case has its own server (for its own counters) and its
// own browser context (its own cookie jar, Web Locks and BroadcastChannel); the cases run
// concurrently, since they spend their time waiting.
import { openTab } from "../lib/browser.mjs";
import { startServer } from "../lib/server.mjs";
import { WWW } from "../lib/paths.mjs";
import { max, median, num, ratio, sleep, table } from "../lib/stats.mjs";

/**
 * The storm limit (`retry.budget`, default 12 refreshes a minute) is raised because the test
 * lifetimes are seconds long: with a 4 s token the manager refreshes every ~2 s. It changes
 * nothing while fewer refreshes are made, and nothing else is configured.
 */
const BUDGET = 60;

async function loadManager(page) {
  await page.evaluate(async (budget) => {
    const m = await import("/pkg/wasm_token_manager.js");
    await m.default();
    const auth = new m.TokenManager({ retry: { budget } });
    const counts = { refresh: 0, otherTab: 0, login: 0, error: 0, expired: 0 };
    // When this tab got each new token (fetched itself or adopted): the age of a token at its
    // replacement is the gap between two of these, whichever tab fetched it.
    const tokenTimes = [];
    auth.addEventListener("refresh", (e) => {
      tokenTimes.push(Date.now());
      e.detail.source === "otherTab" ? counts.otherTab++ : counts.refresh++;
    });
    auth.addEventListener("login", (e) => { counts.login++; counts.loginSource = e.detail.source; });
    auth.addEventListener("error", () => counts.error++);
    auth.addEventListener("expired", () => counts.expired++);
    Object.assign(window, { auth, counts, tokenTimes });
  }, BUDGET);
}

async function tabsCase({ browser, tabs, ttl, lifetimes }) {
  const server = await startServer({ name: `tabs-${tabs}`, accessTtl: ttl, www: WWW });
  const context = await browser.newContext();
  try {
    const pages = [];
    const first = await openTab(context, server.origin);
    await loadManager(first);
    await first.evaluate(() => window.auth.login({ username: "demo", password: "demo-password" }));
    pages.push(first);
    const opening = await server.stats();
    const restoredBy = { otherTab: 0, restore: 0, none: 0 };
    for (let i = 1; i < tabs; i++) {
      const page = await openTab(context, server.origin);
      await loadManager(page);
      const ok = await page.evaluate(() => window.auth.restore());
      restoredBy[ok ? await page.evaluate(() => window.counts.loginSource) : "none"]++;
      pages.push(page);
    }
    const s0 = await server.stats();
    const ownBefore = await Promise.all(pages.map((p) => p.evaluate(() => window.counts.refresh)));
    const t0 = await first.evaluate(() => Date.now());
    await sleep(lifetimes * ttl * 1000);
    const s1 = await server.stats();
    const end = await Promise.all(pages.map((p) => p.evaluate(() => ({
      valid: window.auth.isAuthenticated() && window.auth.expiresAt() > Date.now(),
      counts: window.counts,
    }))));
    const times = (await first.evaluate(() => window.tokenTimes)).filter((t) => t >= t0);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    const own = end.map((e, i) => e.counts.refresh - ownBefore[i]);
    const errors = pages.flatMap((p) => p.errors);
    if (errors.length) throw new Error(`tabs=${tabs}: ${errors[0]}`);
    return {
      tabs, ttl, lifetimes, restoredBy,
      openingRequests: s0.refresh_requests - opening.refresh_requests,
      requests: s1.refresh_requests - s0.refresh_requests,
      rotations: s1.rotations - s0.rotations,
      failed: s1.refresh_failed - s0.refresh_failed,
      allValid: end.every((e) => e.valid),
      adopted: end.reduce((t, e) => t + e.counts.otherTab, 0),
      meanAgeS: gaps.length ? gaps.reduce((a, b) => a + b, 0) / gaps.length / 1000 : NaN,
      fetchedByFirst: own[0],
      fetchedByOthers: own.slice(1).reduce((a, b) => a + b, 0),
    };
  } finally {
    await context.close();
    await server.stop();
  }
}

/**
 * Wake: the tab is hidden (`document.visibilityState` overridden, `visibilitychange`
 * dispatched) and its clock and timers are paused (Playwright's `page.clock.pauseAt`) until
 * the token has expired in real time; then the page's clock jumps forward by the real time
 * that passed (`clock.fastForward`: timers that came due fire once, as after a laptop sleep),
 * the tab becomes visible again (`visibilitychange`) and the clock runs on. Measured from the
 * jump to the manager's next `refresh` event, in Node's clock (the page's is the fake one).
 * Headless Chromium keeps every tab visible and CDP `Page.setWebLifecycleState` froze nothing
 * there (timers kept firing), hence the fake clock.
 */
async function wakeCase({ browser, ttl, samples }) {
  const server = await startServer({ name: "wake", accessTtl: ttl, www: WWW });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.errors = [];
    page.on("pageerror", (e) => page.errors.push(String(e)));
    await page.clock.install();
    const marks = [];
    await page.exposeFunction("benchMark", (what) => { marks.push({ what, at: Date.now() }); });
    await page.goto(`${server.origin}/`);
    await loadManager(page);
    await page.evaluate(async () => {
      const { auth } = window;
      auth.addEventListener("statechange", (e) => { if (e.detail.to === "refreshing") window.benchMark("refreshing"); });
      auth.addEventListener("refresh", () => window.benchMark("fresh"));
      let visibility = "visible";
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => visibility });
      Object.defineProperty(document, "hidden", { configurable: true, get: () => visibility !== "visible" });
      window.setVisibility = (v) => {
        visibility = v;
        document.dispatchEvent(new Event("visibilitychange"));
      };
      await auth.login({ username: "demo", password: "demo-password" });
    });
    const out = [];
    for (let s = 0; s < samples; s++) {
      const hiddenAt = Date.now();
      await page.evaluate(() => window.setVisibility("hidden"));
      const { pausedAt, offset } = await pauseNow(page);
      const s0 = await server.stats();
      await sleep((ttl + 1) * 1000);
      const s1 = await server.stats();
      marks.length = 0;
      const t0 = Date.now();
      await page.clock.fastForward(Math.max(0, t0 + offset - pausedAt));
      await page.evaluate(() => window.setVisibility("visible"));
      await page.clock.resume();
      const deadline = Date.now() + 30_000;
      while (!marks.some((m) => m.what === "fresh") && Date.now() < deadline) await sleep(5);
      const fresh = marks.find((m) => m.what === "fresh");
      const started = marks.find((m) => m.what === "refreshing");
      const s2 = await server.stats();
      out.push({
        hiddenMs: t0 - hiddenAt,
        whileHidden: s1.refresh_requests - s0.refresh_requests,
        onWake: s2.refresh_requests - s1.refresh_requests,
        startedMs: started ? started.at - t0 : NaN,
        freshMs: fresh ? fresh.at - t0 : NaN,
      });
    }
    if (page.errors.length) throw new Error(`wake: ${page.errors[0]}`);
    return out;
  } finally {
    await context.close();
    await server.stop();
  }
}

/**
 * Pauses the page's clock a little ahead of its current time (pausing in its past is refused;
 * on a loaded machine the round trip can exceed the margin, so it grows and retries). Returns
 * where it paused and the page clock's offset from Node's, so the jump at wake lands the
 * page's clock back on real time.
 */
async function pauseNow(page) {
  for (let margin = 100; ; margin *= 2) {
    const pageNow = await page.evaluate(() => Date.now());
    const offset = pageNow - Date.now();
    try {
      await page.clock.pauseAt(pageNow + margin);
      return { pausedAt: pageNow + margin, offset };
    } catch (e) {
      if (margin >= 3200 || !/to the past/.test(String(e))) throw e;
    }
  }
}

export async function refreshSection({ browser, tabTtl, lifetimes, wakeTtl, wakeSamples }) {
  // allSettled: a failing case must not leave the others (and their servers) running.
  const settled = await Promise.allSettled([
    wakeCase({ browser, ttl: wakeTtl, samples: wakeSamples }),
    ...[1, 2, 5].map((tabs) => tabsCase({ browser, tabs, ttl: tabTtl, lifetimes })),
  ]);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw failed.reason;
  const [wake, ...cases] = settled.map((s) => s.value);
  const one = cases[0].requests / cases[0].lifetimes;
  const tabsMd = table(
    ["tabs", "refresh requests (server)", "rotations", "per token lifetime", "÷ 1 tab", "mean token age at replacement, s", "fetched by tab 1 / by tabs 2…N", "tabs 2…N signed in from a sibling / through the cookie", "every tab ends with a valid token"],
    "rrrrrrrrl",
    cases.map((c) => [
      c.tabs, c.requests, c.rotations, num(c.requests / c.lifetimes, 2), ratio(c.requests / c.lifetimes / one),
      num(c.meanAgeS, 2), `${c.fetchedByFirst} / ${c.fetchedByOthers}`,
      c.tabs === 1 ? "–" : `${c.restoredBy.otherTab} / ${c.restoredBy.restore}${c.restoredBy.none ? ` (${c.restoredBy.none} not signed in)` : ""}`,
      c.allValid ? "yes" : "**no**",
    ]),
  );
  const freshMs = wake.map((w) => w.freshMs);
  const wakeMd = table(
    ["samples", "hidden (clock paused) for", "refresh requests while hidden", "refresh requests on wake", "wake → refresh started, ms (median)", "wake → fresh token, ms: median (max)"],
    "rrrrrr",
    [[
      wake.length, `${num(median(wake.map((w) => w.hiddenMs)) / 1000, 1)} s (token lifetime ${wakeTtl} s)`,
      wake.reduce((t, w) => t + w.whileHidden, 0), wake.reduce((t, w) => t + w.onWake, 0),
      num(median(wake.map((w) => w.startedMs)), 0),
      `${num(median(freshMs), 0)} (${num(max(freshMs), 0)})`,
    ]],
  );
  const md = [
    `Token lifetime ${tabTtl} s (\`--access-ttl\`), observed for ${lifetimes} lifetimes after every tab was signed in; tab 1 logs in, the others call \`restore()\`. The manager refreshes at a lead of the larger of 60 s and 20 % of the lifetime, at most half of it, plus jitter — so with these short lifetimes about every half lifetime (≈ 2 per lifetime); with the default 15-minute token, once per ≈ 12 minutes. What matters is the column "÷ 1 tab": extra tabs should add no requests. The tab that fetched a token refreshes it; tabs that adopted it stand by until just after the latest moment the fetching tab could pick (\`core::schedule::follower_refresh_at\`), so they step in only when it is gone. Requests equal to rotations means no two tabs ever refreshed at the same time. The request count in a window of a few lifetimes moves by ±1 with the phase of the refreshes; the mean age of a token when it was replaced (seen by tab 1, whichever tab fetched it) is the finer measure: equal ages mean extra tabs did not pull the schedule earlier.`,
    "",
    tabsMd,
    "",
    "Wake: a tab hidden while its token expired, then visible again. The tab is hidden by overriding `document.visibilityState` and dispatching `visibilitychange`; its timers and clock are paused with Playwright's fake clock (`page.clock.pauseAt`) for the token's lifetime + 1 s of real time, then jumped forward by the real time that passed (`clock.fastForward`: due timers fire once, as after a laptop sleep) and made visible again. Headless Chromium keeps every tab visible, and CDP `Page.setWebLifecycleState: frozen` did not stop its timers, hence the fake clock. Times are taken in Node from the jump to the manager's `statechange → refreshing` and `refresh` events (they include one CDP round trip, about 1 ms).",
    "",
    wakeMd,
  ].join("\n");
  return { md, cases, wake, perLifetime: cases.map((c) => c.requests / c.lifetimes), meanAges: cases.map((c) => c.meanAgeS), wakeMedianMs: median(freshMs) };
}
