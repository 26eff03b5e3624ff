// 5. `auth.fetch` overhead: `GET /api/me` on the loopback server through `auth.fetch` and
// through a bare `fetch` carrying the same `Authorization` header, alternating (which goes
// first alternates too), each request timed to the end of its body. The page is cross-origin
// isolated so `performance.now()` resolves 5 µs. The DPoP row: a manager of the
// `wasm-token-manager/verify` entry with `dpop: true`, whose token the server bound to its key
// (`cnf.jkt`), so every request carries a proof signed (and `ath` hashed) with WebCrypto.
// Measured twice: in the page playwright-core drives (its DevTools `Network` domain on, as for
// every section), and in a Chromium with no DevTools domain on (lib/rawcdp.mjs), as a real page.
import { openPage } from "../lib/browser.mjs";
import { openRawPage } from "../lib/rawcdp.mjs";
import { median, num, quantile, signed, table } from "../lib/stats.mjs";

/** Signs in a manager of the default entry as `window.benchAuth`. */
async function signIn() {
  const m = await import("/pkg/wasm_token_manager.js");
  await m.default();
  const auth = new m.TokenManager({ exposeToken: true, crossTab: false });
  await auth.login({ username: "demo", password: "demo-password" });
  window.benchAuth = auth;
}

/** Signs in a DPoP manager of the `/verify` entry as `window.benchAuthDpop`. */
async function signInDpop() {
  const v = await import("/pkg/verify/wasm_token_manager.js");
  await v.default();
  const authDpop = new v.TokenManager({ dpop: true, crossTab: false });
  await authDpop.login({ username: "demo", password: "demo-password" });
  if (!authDpop.claims()?.cnf?.jkt) throw new Error("the server did not bind the token to the DPoP key (no cnf.jkt)");
  window.benchAuthDpop = authDpop;
}

/** In the page: `pairs` samples of each kind, in a rotating order, each timed to the end of
 * its body (`total`) and for the call's own work (`own`, below). The DPoP kinds only when
 * `dpop`. */
async function sample({ pairs, dpop }) {
  const auth = window.benchAuth;
  const authDpop = window.benchAuthDpop;
  const headers = { Authorization: `Bearer ${auth.getAccessToken()}` };
  // Each kind is its synchronous call (what it does before the browser's `fetch` returns a
  // promise) and the rest: waiting for the response and reading its body.
  const calls = {
    bare: () => fetch("/api/me", { headers }),
    wrapped: () => auth.fetch("/api/me"),
    // What auth.fetch does, written in JavaScript: a Request, a spare clone for the replay
    // after a 401, a copy with the header. Separates the wasm's cost from the Request objects'.
    jsEquivalent: () => {
      const request = new Request("/api/me");
      const spare = request.clone();
      const h = new Headers(request.headers);
      h.set("Authorization", headers.Authorization);
      const sent = fetch(new Request(request, { headers: h }));
      return spare && sent;
    },
  };
  if (dpop) {
    calls.dpop = () => authDpop.fetch("/api/me");
    // The client's share of DPoP alone: a same-origin route that checks no proof (the JWKS),
    // through each manager: the difference is the proof's signing, hashing and header.
    calls.jwksBearer = () => auth.fetch("/.well-known/jwks.json");
    calls.jwksDpop = () => authDpop.fetch("/.well-known/jwks.json");
  }
  // The time spent inside the browser's own `fetch` during a call, so that what the call
  // itself adds (building the request, the header, the wasm) can be told apart from it.
  const realFetch = window.fetch;
  let inFetch = 0;
  window.fetch = function (...a) {
    const t0 = performance.now();
    try {
      return realFetch.apply(this, a);
    } finally {
      inFetch += performance.now() - t0;
    }
  };
  const names = Object.keys(calls);
  const run = async (n) => {
    inFetch = 0;
    const t0 = performance.now();
    const sent = calls[n]();
    const t1 = performance.now();
    const res = await sent;
    if (!res.ok) throw new Error(`${n}: ${res.status}`);
    await res.arrayBuffer();
    const t2 = performance.now();
    return { total: (t2 - t0) * 1000, own: (t1 - t0 - inFetch) * 1000 };
  };
  try {
    for (let i = 0; i < Math.max(20, pairs / 10); i++) for (const n of names) await run(n);
    const out = { isolated: self.crossOriginIsolated, own: {} };
    for (const n of names) {
      out[n] = [];
      out.own[n] = [];
    }
    for (let i = 0; i < pairs; i++) {
      for (let k = 0; k < names.length; k++) {
        const n = names[(i + k) % names.length];
        const { total, own } = await run(n);
        out[n].push(total);
        out.own[n].push(own);
      }
    }
    return out;
  } finally {
    window.fetch = realFetch;
  }
}

/** In the page: the floor of a proof, what WebCrypto itself takes (a P-256 signature of a
 * proof-sized input and the SHA-256 of a token), no fetch. */
async function webcryptoFloor({ pairs }) {
  const { privateKey: key } = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  const input = new TextEncoder().encode("x".repeat(420));
  const token = new TextEncoder().encode(window.benchAuth.getAccessToken());
  const out = [];
  for (let i = 0; i < pairs; i++) {
    const t0 = performance.now();
    await crypto.subtle.digest("SHA-256", token);
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, input);
    out.push((performance.now() - t0) * 1000);
  }
  return out;
}

function freeAll() {
  window.benchAuth?.free();
  window.benchAuthDpop?.free();
}

export async function fetchSection({ browser, origin, pairs }) {
  const { context, page } = await openPage(browser, origin, { isolated: true });
  let r;
  try {
    // Two sessions, one per manager: a login drops the session of the cookie it is sent with,
    // so the jar is emptied in between (the cookie is HttpOnly: only the browser can).
    await page.evaluate(signIn);
    await context.clearCookies();
    await page.evaluate(signInDpop);
    r = await page.evaluate(sample, { pairs, dpop: true });
    r.webcrypto = await page.evaluate(webcryptoFloor, { pairs });
    await page.evaluate(freeAll);
    if (page.errors.length) throw new Error(page.errors[0]);
  } finally {
    await context.close();
  }
  // The same three kinds with no DevTools domain on.
  const raw = await openRawPage(origin, { isolated: true });
  let q;
  try {
    await raw.evaluate(signIn);
    q = await raw.evaluate(sample, { pairs, dpop: false });
    await raw.evaluate(freeAll);
  } finally {
    await raw.close();
  }
  const paired = (a, b) => a.map((x, i) => x - b[i]);
  const diff = paired(r.wrapped, r.bare);
  const jsDiff = paired(r.jsEquivalent, r.bare);
  const vsJs = paired(r.wrapped, r.jsEquivalent);
  const dpopDiff = paired(r.dpop, r.wrapped);
  const clientDiff = paired(r.jwksDpop, r.jwksBearer);
  const ownDiff = paired(r.own.wrapped, r.own.jsEquivalent);
  const rawDiff = paired(q.wrapped, q.bare);
  const rawJsDiff = paired(q.jsEquivalent, q.bare);
  const rawVsJs = paired(q.wrapped, q.jsEquivalent);
  const rawOwnDiff = paired(q.own.wrapped, q.own.jsEquivalent);
  const row = (label, xs) => [label, num(median(xs) / 1000, 3), num(quantile(xs, 0.99) / 1000, 3)];
  const p99 = (xs) => quantile(xs, 0.99);
  const spread = (xs) => `${signed(quantile(xs, 0.25))} … ${signed(quantile(xs, 0.75))} µs`;
  const own = (o) => `${num(median(o.bare), 0)} / ${num(median(o.wrapped), 0)} / ${num(median(o.jsEquivalent), 0)} µs`;
  const md = [
    "In the page playwright-core drives (its DevTools `Network` domain on):",
    "",
    table(
      ["request", "median ms", "p99 ms"],
      "lrr",
      [
        row("bare `fetch` + `Authorization` header", r.bare),
        row("**`auth.fetch`**", r.wrapped),
        row("the same steps in JavaScript (`new Request`, `clone()`, copy with the header)", r.jsEquivalent),
        ["**overhead of `auth.fetch`** over bare (median of per-sample differences; p99 − p99)",
          `${signed(median(diff))} µs`, `${signed(p99(r.wrapped) - p99(r.bare))} µs`],
        ["overhead of the JavaScript equivalent, same way",
          `${signed(median(jsDiff))} µs`, `${signed(p99(r.jsEquivalent) - p99(r.bare))} µs`],
        row("**`auth.fetch` with `dpop: true`** (`/verify` entry; a proof signed per request)", r.dpop),
        ["**added by DPoP** over `auth.fetch` (median of per-sample differences; p99 − p99): the client's proof and the server's check (signature, `jti` stored)",
          `${signed(median(dpopDiff))} µs`, `${signed(p99(r.dpop) - p99(r.wrapped))} µs`],
        ["added by DPoP on a route that checks no proof (`auth.fetch` of the JWKS, DPoP manager − bearer manager): the client's share",
          `${signed(median(clientDiff))} µs`, `${signed(p99(r.jwksDpop) - p99(r.jwksBearer))} µs`],
        row("WebCrypto alone: SHA-256 of the token + one P-256 signature (no fetch)", r.webcrypto),
      ],
    ),
    "",
    "`auth.fetch` against the same steps in JavaScript, in that page and in a Chromium with no DevTools domain on (`bench/lib/rawcdp.mjs`, as a real page):",
    "",
    table(
      ["measure", "playwright-core page", "no DevTools"],
      "lrr",
      [
        ["overhead over bare `fetch`: `auth.fetch` / the JavaScript steps (medians of per-sample differences)",
          `${signed(median(diff))} / ${signed(median(jsDiff))} µs`, `${signed(median(rawDiff))} / ${signed(median(rawJsDiff))} µs`],
        ["**`auth.fetch` − the JavaScript steps** (median of per-sample differences; p25 … p75)",
          `${signed(median(vsJs))} µs (${spread(vsJs)})`, `**${signed(median(rawVsJs))} µs** (${spread(rawVsJs)})`],
        ["the call's own work, outside the browser's `fetch` (median): bare / `auth.fetch` / JavaScript steps",
          own(r.own), own(q.own)],
        ["the call's own work, `auth.fetch` − the JavaScript steps (median of per-sample differences; p25 … p75)",
          `${signed(median(ownDiff))} µs (${spread(ownDiff)})`, `${signed(median(rawOwnDiff))} µs (${spread(rawOwnDiff)})`],
      ],
    ),
    "",
    `${pairs} samples in each browser (one request of each kind, order rotating) after ${Math.max(20, pairs / 10)} warm-up samples, token lifetime 1 h (no refresh during the run), response bodies read to the end; cross-origin isolated: ${r.isolated && q.isolated ? "yes (5 µs timer)" : "no (100 µs timer)"}. A bare loopback request costs milliseconds here because the browser's network service and the server share 2 busy cores; the overhead is the difference within each sample. The p99 difference is the difference of two tails dominated by the machine's noise (it can come out negative); the median difference is the estimate of the overhead. The call's own work is the synchronous part of the call minus the time spent inside the browser's \`fetch\` (a wrapper times it, the same for every kind), in the same cold state as a real request (the previous response just read). With DevTools' \`Network\` domain on, the browser records the JavaScript stack of every request it sends; a \`fetch\` called under a wasm frame (as \`auth.fetch\`'s is) pays about 0.1 ms more for it than one called from a shallow JavaScript function: the difference between the two columns.`,
  ].join("\n");
  return {
    md, raw: r, rawNoDevtools: q,
    dpopOverheadUs: median(dpopDiff), dpopClientUs: median(clientDiff), overheadUs: median(diff),
    p99OverheadUs: p99(r.wrapped) - p99(r.bare), jsOverheadUs: median(jsDiff), vsJsUs: median(vsJs),
    noDevtoolsVsJsUs: median(rawVsJs), ownDiffUs: median(ownDiff), bare: r.bare, wrapped: r.wrapped,
  };
}
