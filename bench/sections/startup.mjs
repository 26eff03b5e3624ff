// 4. Start-up: a fresh browser context per sample (empty HTTP and code caches), one contestant
// per page, contestants interleaved. For this package: from the `init()` call to a constructed
// `TokenManager` (fetch + compile + instantiate the wasm), and from `import()` of the glue.
// For the SPA libraries: from `import()` of their bundle to a constructed client.
import { openPage } from "../lib/browser.mjs";
import { ANCHOR_ENTRIES } from "./size.mjs";
import { median, num, quantile, ratio, table } from "../lib/stats.mjs";

const OURS = [
  { name: "wasm-token-manager", url: "/pkg/wasm_token_manager.js" },
  { name: "wasm-token-manager/verify", url: "/pkg/verify/wasm_token_manager.js" },
  // As an app that follows README "Use it in your app" loads it: the page's <head> names the
  // .wasm (`<link rel="preload" as="fetch" crossorigin>`) and the glue (`modulepreload`), so
  // both requests start together instead of the wasm's after the glue's. Inserted here at
  // t0, which is later than a real <head> would start them.
  { name: "wasm-token-manager, wasm preloaded", url: "/pkg/wasm_token_manager.js", preload: true },
];

async function sampleOurs(page, url, preload) {
  // The preload counts only if `init()` took its response: one request for the .wasm (counted
  // by the browser's request events; the page's resource timing sometimes has no entry for a
  // response that `instantiateStreaming` consumed).
  let wasmRequests = 0;
  page.on("request", (request) => {
    if (request.url().endsWith(".wasm")) wasmRequests++;
  });
  const sample = await page.evaluate(async ([url, preload]) => {
    const t0 = performance.now();
    if (preload) {
      const wasm = new URL("wasm_token_manager_bg.wasm", new URL(url, location.href)).href;
      for (const [rel, href] of [["modulepreload", url], ["preload", wasm]]) {
        const link = document.createElement("link");
        link.rel = rel;
        link.href = href;
        if (rel === "preload") {
          link.as = "fetch";
          link.crossOrigin = "anonymous";
        }
        document.head.append(link);
      }
    }
    const m = await import(url);
    const t1 = performance.now();
    await m.default();
    const auth = new m.TokenManager();
    const t2 = performance.now();
    if (auth.state !== "signedOut") throw new Error(`unexpected state ${auth.state}`);
    auth.free();
    return { initMs: t2 - t1, totalMs: t2 - t0 };
  }, [url, preload]);
  if (wasmRequests !== 1) throw new Error(`${url}${preload ? " (preloaded)" : ""}: the .wasm was requested ${wasmRequests} times`);
  return sample;
}

async function sampleAnchor(page, url) {
  return page.evaluate(async (url) => {
    const t0 = performance.now();
    const m = await import(url);
    const client = await m.start(location.origin);
    const t1 = performance.now();
    if (!client) throw new Error("no client");
    return { totalMs: t1 - t0 };
  }, url);
}

export async function startupSection({ browser, origin, samples, versions }) {
  const contestants = [
    ...OURS.map((o) => ({ ...o, ours: true })),
    ...Object.entries(ANCHOR_ENTRIES)
      .filter(([, e]) => e.client)
      .map(([key, e]) => ({ name: `${e.pkg} ${versions[e.pkg]}`, what: e.what, url: `/dist/anchors/${key}.js` })),
  ];
  const results = Object.fromEntries(contestants.map((c) => [c.name, []]));
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < contestants.length; i++) {
      const c = contestants[(i + s) % contestants.length];
      const { context, page } = await openPage(browser, origin);
      try {
        results[c.name].push(c.ours ? await sampleOurs(page, c.url, c.preload) : await sampleAnchor(page, c.url));
        if (page.errors.length) throw new Error(`${c.name}: ${page.errors[0]}`);
      } finally {
        await context.close();
      }
    }
  }
  const base = median(results["wasm-token-manager"].map((r) => r.totalMs));
  const md = table(
    ["package", "measured", "`init()` → `TokenManager`, ms: median (p90)", "`import()` → usable client, ms: median (p90)", "÷ ours (import → usable)"],
    "llrrr",
    contestants.map((c) => {
      const total = results[c.name].map((r) => r.totalMs);
      const init = c.ours ? results[c.name].map((r) => r.initMs) : null;
      return [
        c.ours ? `**${c.name}**` : c.name,
        c.preload ? "the same, the page preloading the glue and the `.wasm`" : c.ours ? "`await init(); new TokenManager()`" : `construct ${c.what}${c.name.startsWith("@azure") ? " + `initialize()`" : ""}`,
        init ? `${num(median(init), 1)} (${num(quantile(init, 0.9), 1)})` : "–",
        `${num(median(total), 1)} (${num(quantile(total, 0.9), 1)})`,
        c.name === "wasm-token-manager" ? "1×" : ratio(median(total) / base),
      ];
    }),
  );
  return { md, results };
}
