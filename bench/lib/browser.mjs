// The system Chromium, driven by playwright-core. Never a downloaded browser.
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
}

/**
 * A fresh browser context (own cookie jar, HTTP cache and code cache) with one page on the
 * blank bench page. `isolated`: the page is served with COOP/COEP so it is cross-origin
 * isolated and `performance.now()` has 5 µs instead of 100 µs resolution; only the document is
 * intercepted, and interception is removed before anything is measured.
 */
export async function openPage(browser, origin, { isolated = false, beforeLoad } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  if (beforeLoad) await beforeLoad(page);
  const url = `${origin}/`;
  if (isolated) {
    await page.route(url, async (route) => {
      const response = await route.fetch();
      await route.fulfill({
        response,
        headers: {
          ...response.headers(),
          "cross-origin-opener-policy": "same-origin",
          "cross-origin-embedder-policy": "require-corp",
        },
      });
    });
  }
  await page.goto(url);
  if (isolated) await page.unrouteAll();
  return { context, page };
}

/** Another page (tab) in the same context: shares cookies, Web Locks and BroadcastChannel. */
export async function openTab(context, origin) {
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  await page.goto(`${origin}/`);
  return page;
}
