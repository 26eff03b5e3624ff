// 5. `auth.fetch` overhead: `GET /api/me` on the loopback server through `auth.fetch` and
// through a bare `fetch` carrying the same `Authorization` header, alternating (which goes
// first alternates too), each request timed to the end of its body. The page is cross-origin
// isolated so `performance.now()` resolves 5 µs. The DPoP row: a manager of the
// `wasm-token-manager/verify` entry with `dpop: true`, whose token the server bound to its key
// (`cnf.jkt`), so every request carries a proof signed (and `ath` hashed) with WebCrypto.
import { openPage } from "../lib/browser.mjs";
import { median, num, quantile, signed, table } from "../lib/stats.mjs";

export async function fetchSection({ browser, origin, pairs }) {
  const { context, page } = await openPage(browser, origin, { isolated: true });
  try {
    // Two sessions, one per manager: a login drops the session of the cookie it is sent with,
    // so the jar is emptied in between (the cookie is HttpOnly: only the browser can).
    await page.evaluate(async () => {
      const m = await import("/pkg/wasm_token_manager.js");
      await m.default();
      const auth = new m.TokenManager({ exposeToken: true, crossTab: false });
      await auth.login({ username: "demo", password: "demo-password" });
      window.benchAuth = auth;
    });
    await context.clearCookies();
    await page.evaluate(async () => {
      const v = await import("/pkg/verify/wasm_token_manager.js");
      await v.default();
      const authDpop = new v.TokenManager({ dpop: true, crossTab: false });
      await authDpop.login({ username: "demo", password: "demo-password" });
      if (!authDpop.claims()?.cnf?.jkt) throw new Error("the server did not bind the token to the DPoP key (no cnf.jkt)");
      window.benchAuthDpop = authDpop;
    });
    const r = await page.evaluate(async (pairs) => {
      const auth = window.benchAuth;
      const authDpop = window.benchAuthDpop;
      const headers = { Authorization: `Bearer ${auth.getAccessToken()}` };
      const dpop = async () => {
        const res = await authDpop.fetch("/api/me");
        if (!res.ok) throw new Error(`auth.fetch with DPoP: ${res.status}`);
        await res.arrayBuffer();
      };
      const bare = async () => {
        const res = await fetch("/api/me", { headers });
        if (!res.ok) throw new Error(`bare fetch: ${res.status}`);
        await res.arrayBuffer();
      };
      const wrapped = async () => {
        const res = await auth.fetch("/api/me");
        if (!res.ok) throw new Error(`auth.fetch: ${res.status}`);
        await res.arrayBuffer();
      };
      // What auth.fetch does, written in JavaScript: a Request, a spare clone for the replay
      // after a 401, a copy with the header. Separates the wasm's cost from the Request objects'.
      const jsEquivalent = async () => {
        const request = new Request("/api/me");
        const spare = request.clone();
        const h = new Headers(request.headers);
        h.set("Authorization", headers.Authorization);
        const res = await fetch(new Request(request, { headers: h }));
        if (!res.ok || !spare) throw new Error(`JS equivalent: ${res.status}`);
        await res.arrayBuffer();
      };
      const time = async (fn) => {
        const t0 = performance.now();
        await fn();
        return (performance.now() - t0) * 1000;
      };
      // The client's share of DPoP alone: a same-origin route that checks no proof (the JWKS),
      // through each manager: the difference is the proof's signing, hashing and header.
      const jwks = (a) => async () => {
        const res = await a.fetch("/.well-known/jwks.json");
        if (!res.ok) throw new Error(`JWKS: ${res.status}`);
        await res.arrayBuffer();
      };
      const kinds = { bare, wrapped, jsEquivalent, dpop, jwksBearer: jwks(auth), jwksDpop: jwks(authDpop) };
      const names = Object.keys(kinds);
      for (let i = 0; i < Math.max(20, pairs / 10); i++) for (const n of names) await kinds[n]();
      const out = { bare: [], wrapped: [], jsEquivalent: [], dpop: [], jwksBearer: [], jwksDpop: [], isolated: self.crossOriginIsolated };
      for (let i = 0; i < pairs; i++) {
        // The three requests of a sample in a rotating order, so none is always first.
        for (let k = 0; k < names.length; k++) {
          const n = names[(i + k) % names.length];
          out[n].push(await time(kinds[n]));
        }
      }
      // The floor: what WebCrypto itself takes for one proof (a P-256 signature of a proof-sized
      // input and the SHA-256 of a token), no fetch.
      const { privateKey: key } = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
      const input = new TextEncoder().encode("x".repeat(420));
      const token = new TextEncoder().encode(auth.getAccessToken());
      out.webcrypto = [];
      for (let i = 0; i < pairs; i++) {
        out.webcrypto.push(await time(async () => {
          await crypto.subtle.digest("SHA-256", token);
          await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, input);
        }));
      }
      auth.free();
      authDpop.free();
      return out;
    }, pairs);
    if (page.errors.length) throw new Error(page.errors[0]);
    const diff = r.wrapped.map((w, i) => w - r.bare[i]);
    const jsDiff = r.jsEquivalent.map((w, i) => w - r.bare[i]);
    const dpopDiff = r.dpop.map((w, i) => w - r.wrapped[i]);
    const clientDiff = r.jwksDpop.map((w, i) => w - r.jwksBearer[i]);
    const row = (label, xs) => [label, num(median(xs) / 1000, 3), num(quantile(xs, 0.99) / 1000, 3)];
    const p99 = (xs) => quantile(xs, 0.99);
    const md = [
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
      `${pairs} samples (one request of each kind, order rotating) after ${Math.max(20, pairs / 10)} warm-up samples, token lifetime 1 h (no refresh during the run), response bodies read to the end; cross-origin isolated: ${r.isolated ? "yes (5 µs timer)" : "no (100 µs timer)"}. A bare loopback request costs milliseconds here because the browser's network service and the server share 2 busy cores; the overhead is the difference within each sample. The p99 difference is the difference of two tails dominated by the machine's noise (it can come out negative); the median difference is the estimate of the overhead.`,
    ].join("\n");
    return { md, raw: r, dpopOverheadUs: median(dpopDiff), dpopClientUs: median(clientDiff), overheadUs: median(diff), p99OverheadUs: p99(r.wrapped) - p99(r.bare), jsOverheadUs: median(jsDiff), bare: r.bare, wrapped: r.wrapped };
  } finally {
    await context.close();
  }
}
