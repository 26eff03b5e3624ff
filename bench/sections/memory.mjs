// 7. Memory growth: does repeated work leave memory behind? The wasm linear memory
// (`memory.buffer.byteLength`, which never shrinks, so it shows the peak the allocator needed)
// and the page's JS heap (CDP `Runtime.getHeapUsage` after `HeapProfiler.collectGarbage`) are
// read after the first 100 operations and again after all of them: 10,000 decodes of the
// 1.2 KB token, and 1,000 refresh cycles of one manager against the reference server.
//
// Refresh cycles: 60-second tokens, and Playwright's fake clock jumps the page's clock three
// quarters of a lifetime ahead each cycle (`clock.fastForward`: past the refresh, which is due
// at about half-life, and before the token's end), then waits for the manager's `refresh` event. The refresh itself is real: a request
// to the server, a rotated cookie, a new token decoded, events dispatched. The page's clock
// runs on between jumps, so every wait the manager makes (the cross-tab lock, its request
// timeout) behaves as it would. The refresh pages are read once more after twice as many cycles
// again (3× in all): growth that stops there is warm-up, growth that goes on is a leak. A control
// page runs the same harness with no package (a timer, a `fetch` of a small file and its JSON
// each cycle), so what the harness and the browser's own bookkeeping add is measured beside it.
import { openPage } from "../lib/browser.mjs";
import { startServer } from "../lib/server.mjs";
import { WWW } from "../lib/paths.mjs";
import { int, num, table } from "../lib/stats.mjs";

/** Token lifetime, seconds (shared with bench/heap-diff.mjs). */
export const TTL = 60;
const FIRST = 100;

/** Wasm memory and JS heap, after a full garbage collection. */
async function usage(page, cdp) {
  await cdp.send("HeapProfiler.collectGarbage");
  const { usedSize } = await cdp.send("Runtime.getHeapUsage");
  // The control page has no wasm: 0.
  const wasmBytes = await page.evaluate(() => window.wasm?.memory.buffer.byteLength ?? 0);
  return { wasmBytes, heapBytes: usedSize };
}

async function decodeCase({ browser, origin, tokens, decodes }) {
  const { context, page } = await openPage(browser, origin);
  try {
    const cdp = await context.newCDPSession(page);
    await page.evaluate(async (pool) => {
      const m = await import("/pkg/wasm_token_manager.js");
      window.wasm = await m.default();
      window.decodeN = (n) => {
        let sink = 0;
        for (let i = 0; i < n; i++) sink += m.decodeClaims(pool[i & (pool.length - 1)]).exp;
        if (!(sink > 0)) throw new Error("decode produced nothing");
      };
    }, tokens);
    await page.evaluate((n) => window.decodeN(n), FIRST);
    const first = await usage(page, cdp);
    await page.evaluate((n) => window.decodeN(n), decodes - FIRST);
    const last = await usage(page, cdp);
    if (page.errors.length) throw new Error(`decode: ${page.errors[0]}`);
    return { what: `\`decodeClaims\`, 1.2 KB token`, n: decodes, first, last };
  } finally {
    await context.close();
  }
}

/** Sets up `window.nextRefresh` on a refresh page (the package's manager, signed in, with
 * `window.auth` and `window.counts` of its events), or on the control page (a timer and a
 * `fetch` each cycle, no package). Shared with bench/heap-diff.mjs. */
export async function prepareRefreshPage(page, control) {
  if (control) {
    // The manager's refresh timer fires at about half-life; the control's at half of it.
    await page.evaluate((ms) => {
      window.nextRefresh = () => new Promise((resolve) => setTimeout(async () => {
        const res = await fetch("/pkg/package.json");
        resolve((await res.json()).name);
      }, ms));
    }, TTL * 500);
    return;
  }
  await page.evaluate(async () => {
    const m = await import("/pkg/wasm_token_manager.js");
    window.wasm = await m.default();
    const auth = new m.TokenManager();
    const counts = { refresh: 0, error: 0, expired: 0 };
    auth.addEventListener("refresh", () => counts.refresh++);
    auth.addEventListener("error", () => counts.error++);
    auth.addEventListener("expired", () => counts.expired++);
    // Resolves at the next `refresh` event, with the new claims read.
    window.nextRefresh = () => new Promise((resolve) => {
      const once = () => { auth.removeEventListener("refresh", once); resolve(auth.claims()); };
      auth.addEventListener("refresh", once);
    });
    Object.assign(window, { auth, counts });
    await auth.login({ username: "demo", password: "demo-password" });
    auth.claims();
  });
}

/** `n` refresh cycles: each jumps the page's fake clock three quarters of a lifetime ahead
 * and waits for `nextRefresh`. */
export async function refreshCycles(page, n) {
  for (let i = 0; i < n; i++) {
    const refreshed = page.evaluate(() => window.nextRefresh());
    await page.clock.fastForward(TTL * 750);
    await refreshed;
  }
}

async function refreshCase({ browser, cycles, control = false }) {
  const server = await startServer({ name: control ? "memory-control" : "memory", accessTtl: TTL, www: WWW });
  const { context, page } = await openPage(browser, server.origin, {
    beforeLoad: (p) => p.clock.install(),
  });
  try {
    const cdp = await context.newCDPSession(page);
    await prepareRefreshPage(page, control);
    const cycle = (n) => refreshCycles(page, n);
    await cycle(FIRST);
    const first = await usage(page, cdp);
    const s0 = await server.stats();
    await cycle(cycles - FIRST);
    const last = await usage(page, cdp);
    const s1 = await server.stats();
    await cycle(cycles * 2);
    const later = await usage(page, cdp);
    if (page.errors.length) throw new Error(`refresh: ${page.errors[0]}`);
    if (control) {
      return { what: "control: the same harness, no package (a timer and a `fetch` each cycle)", n: cycles, first, last, later, control };
    }
    const counts = await page.evaluate(() => ({ ...window.counts, valid: window.auth.isAuthenticated() }));
    if (counts.refresh !== cycles * 3 || !counts.valid) {
      throw new Error(`refresh: ${counts.refresh} refreshes of ${cycles * 3}, signed in: ${counts.valid}`);
    }
    return {
      what: `refresh cycles of one manager (login, then refreshes through the cookie; ${TTL} s tokens)`,
      n: cycles, first, last, later,
      note: `${s1.rotations - s0.rotations} rotations at the server after the first ${FIRST} (up to the "after all" reading); ${counts.error} error and ${counts.expired} expired events`,
    };
  } finally {
    await context.close();
    await server.stop();
  }
}

export async function memorySection({ browser, origin, tokens, decodes, cycles }) {
  const cases = [
    await decodeCase({ browser, origin, tokens, decodes }),
    await refreshCase({ browser, cycles }),
    await refreshCase({ browser, cycles, control: true }),
  ];
  const kb = (b) => `${int(b / 1024)} KiB`;
  const growth = (a, b) => `${b >= a ? "+" : "−"}${num((Math.abs(b - a) / a) * 100, 1)} %`;
  const later = (c, key) => (c.later ? [kb(c.later[key]), growth(c.last[key], c.later[key])] : ["–", "–"]);
  const rows = cases.flatMap((c) => [
    ...(c.control ? [] : [[c.what, "wasm memory", kb(c.first.wasmBytes), int(c.n), kb(c.last.wasmBytes), growth(c.first.wasmBytes, c.last.wasmBytes), ...later(c, "wasmBytes")]]),
    [c.what, "JS heap (after GC)", kb(c.first.heapBytes), int(c.n), kb(c.last.heapBytes), growth(c.first.heapBytes, c.last.heapBytes), ...later(c, "heapBytes")],
  ]);
  const md = [
    `Memory after the first ${FIRST} operations and after all of them, in one page each. Wasm memory is the linear memory's size (\`memory.buffer.byteLength\`: it grows in 64 KiB pages and never shrinks, so it is the peak the allocator needed); the JS heap is Chromium's used heap (CDP \`Runtime.getHeapUsage\`) right after a forced garbage collection (\`HeapProfiler.collectGarbage\`). The target (issue 16) is growth within 10 %. Refresh cycles are real requests to the reference server; the page's clock jumps three quarters of a token lifetime ahead each cycle (Playwright's fake clock), so the refresh timer fires at once. The refresh pages are read again after 3× the cycles (growth that stops is warm-up, growth that goes on is a leak), and a control page runs the same harness without the package: what the harness and the browser's own bookkeeping add.`,
    "",
    table(["work", "memory", `after ${FIRST}`, "operations", "after all", "growth", "after 3× the operations", "growth since \"after all\""], "llrrrrrr", rows),
    "",
    ...cases.filter((c) => c.note).map((c) => `Refresh: ${c.note}.`),
  ].join("\n");
  return { md, cases };
}
