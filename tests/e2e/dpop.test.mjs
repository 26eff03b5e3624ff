// DPoP (RFC 9449) end to end: the package's verifying entry with `dpop: true`
// (tests/e2e/fixtures/dpop/) against the real reference server, in the system Chromium.
// Three tabs share one non-extractable key (it travels with the token over the
// BroadcastChannel), so each token of a few seconds is refreshed once between them and stays
// bound to the same key (`cnf.jkt`); every `/api/me` carries a proof the server accepts and
// that Node verifies on its own; a reload starts a new key; nothing reaches any storage. A
// token copied out of the page is worthless without the page's key. With `--dpop-nonce` a page
// that has no nonce yet is challenged and retries once. The default entry refuses `dpop: true`.
// (The nonce challenge of a resource server, which the reference server's 300 s nonce period
// makes impossible to provoke here, is tested against a fake server in tests/dpop.rs.)

import assert from "node:assert/strict";
import { mkdtempSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, test } from "node:test";

import { FAST, assertNoTokenExposed, gotoDemo, launchBrowser, login, newContext, openDemo } from "./helpers/browser.mjs";
import { checkProof, proofOfAnotherKey, thumbprint } from "./helpers/dpop.mjs";
import { ROOT, startServer } from "./helpers/server.mjs";

// The timing of tabs.test.mjs: a 4 s token, a 1 s lead, so a token is replaced between 2.75 s
// and 3 s after it arrived, once between all tabs.
const TTL = 4;
const PARAMS = { ...FAST, refreshLeadSeconds: 1 };
const GENERATIONS = 3;

const www = mkdtempSync(join(tmpdir(), "dpop-e2e-"));
cpSync(join(ROOT, "tests/e2e/fixtures/dpop"), www, { recursive: true });

let server;
let nonceServer;
let browser;
let context;

before(async () => {
  [server, nonceServer, browser] = await Promise.all([
    // A later --www wins: the fixture page instead of the demo.
    startServer({ name: "dpop", accessTtl: TTL, args: ["--www", www] }),
    startServer({ name: "dpop-nonce", accessTtl: TTL, args: ["--www", www, "--dpop-nonce"] }),
    launchBrowser(),
  ]);
});
after(async () => {
  await browser?.close();
  await Promise.all([server?.stop(), nonceServer?.stop()]);
});
beforeEach(async () => {
  await context?.close();
  await Promise.all([server.reset(), nonceServer.reset()]);
  context = await newContext(browser);
});

/**
 * Every request of the context to `path`, with all its headers and its answer's status and
 * headers: [{ url, method, headers, status, answer }] (filled in as answers arrive).
 */
function record(path) {
  const seen = [];
  // "response" (the headers arrived), not "requestfinished": a body nobody reads never finishes.
  context.on("response", async (response) => {
    const request = response.request();
    if (new URL(request.url()).pathname !== path) return;
    const entry = { url: request.url(), method: request.method(), status: response.status() };
    seen.push(entry);
    entry.headers = await request.allHeaders();
    entry.answer = await response.allHeaders();
  });
  return seen;
}

/** `auth.fetch(path)` in the page: the status. */
function apiStatus(page, path = "/api/me") {
  return page.evaluate(async (p) => {
    const response = await window.demo.auth.fetch(p);
    await response.arrayBuffer();
    return response.status;
  }, path);
}

/** The token's `jti` and `cnf.jkt` in each tab. */
function held(tabs) {
  return Promise.all(tabs.map((t) => t.evaluate(() => {
    const c = window.demo.auth.claims();
    return c ? { jti: c.jti, jkt: c.cnf?.jkt ?? null } : null;
  })));
}

/** Waits (two lifetimes at most) until all tabs hold one token not in `seen`; returns it. */
async function sharedNewToken(tabs, seen) {
  const deadline = Date.now() + 2 * TTL * 1000;
  for (;;) {
    const now = await held(tabs);
    if (now[0] && !seen.has(now[0].jti) && now.every((h) => h?.jti === now[0].jti)) return now[0];
    if (Date.now() > deadline) throw new Error(`no new token shared by all tabs: ${JSON.stringify(now)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Asserts that every recorded `/api/me` carried a DPoP token and a valid proof for it. */
function assertProofs(calls, base) {
  assert.ok(calls.length > 0, "API calls were made");
  for (const [i, call] of calls.entries()) {
    assert.equal(call.status, 200, `call ${i} accepted`);
    const [scheme, token] = call.headers.authorization.split(" ");
    assert.equal(scheme, "DPoP", `call ${i}: Authorization scheme`);
    const { problems } = checkProof(call.headers.dpop, { htm: "GET", htu: `${base}/api/me`, token });
    assert.deepEqual(problems, [], `call ${i}: proof`);
  }
}

test("three tabs share one DPoP key: one refresh per token over several lifetimes, every /api/me proof valid, nothing stored", async () => {
  const calls = record("/api/me");
  const tabs = [await openDemo(context, server.url, PARAMS)];
  await login(tabs[0]);
  for (let i = 1; i < 3; i++) tabs.push(await openDemo(context, server.url, PARAMS));
  const first = (await held(tabs))[0];
  assert.ok(first.jkt, "the login's token is bound to a key (cnf.jkt)");
  for (const [i, tab] of tabs.entries()) {
    assert.equal(await apiStatus(tab), 200, `tab ${i}`);
  }
  const seen = new Set([first.jti]);
  const quiet = await sharedNewToken(tabs, seen);
  seen.add(quiet.jti);
  const before = await server.stats();
  for (let g = 0; g < GENERATIONS; g++) {
    const token = await sharedNewToken(tabs, seen);
    seen.add(token.jti);
    // One key for the whole session: a refresh by any tab binds the new token to it.
    assert.equal(token.jkt, first.jkt, `token ${g} is bound to the session's key`);
    for (const [i, tab] of tabs.entries()) assert.equal(await apiStatus(tab), 200, `tab ${i}, token ${g}`);
  }
  const afterStats = await server.stats();
  assert.equal(afterStats.refresh_requests - before.refresh_requests, GENERATIONS, "one refresh request per token");
  assert.equal(afterStats.rotations - before.rotations, GENERATIONS, "rotations");
  assert.equal(afterStats.grace_replays, 0, "no two tabs refreshed one token");
  assert.equal(afterStats.refresh_failed - before.refresh_failed, 0, "failed refreshes");
  // Every answer is in before the check (each tab awaited its calls).
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(calls.length, 3 * (GENERATIONS + 1));
  assertProofs(calls, server.url);
  await assertNoTokenExposed(context, { expectCookie: true });
  for (const tab of tabs) assert.deepEqual(tab.pageErrors, []);
});

test("a reload restores the session with a new key", async () => {
  const page = await openDemo(context, server.url, PARAMS);
  await login(page);
  const [before] = await held([page]);
  await gotoDemo(page, server.url, PARAMS);
  assert.equal(await page.evaluate(() => window.demo.restored), true, "restored through the cookie");
  const [after] = await held([page]);
  assert.ok(after.jkt, "the restored token is bound");
  assert.notEqual(after.jkt, before.jkt, "a new key after the reload");
  assert.equal(await apiStatus(page), 200);
  await assertNoTokenExposed(context, { expectCookie: true });
  assert.deepEqual(page.pageErrors, []);
});

test("a token copied out of the page is refused without the page's key, and the page keeps working", async () => {
  const page = await openDemo(context, server.url, PARAMS);
  await login(page);
  const token = await page.evaluate(() => window.demo.auth.getAccessToken());
  const [{ jkt }] = await held([page]);
  const htu = `${server.url}/api/me`;
  const attempts = {
    "DPoP without a proof": { Authorization: `DPoP ${token}` },
    "DPoP with a proof of another key": { Authorization: `DPoP ${token}`, DPoP: proofOfAnotherKey({ htm: "GET", htu, token }) },
    "as a bearer token": { Authorization: `Bearer ${token}` },
  };
  for (const [what, headers] of Object.entries(attempts)) {
    const response = await fetch(htu, { headers });
    assert.equal(response.status, 401, what);
    assert.match(response.headers.get("www-authenticate") ?? "", /^DPoP /, `${what}: a DPoP challenge`);
  }
  // The other key's proof was valid in itself: the thumbprint is what refused it.
  const other = proofOfAnotherKey({ htm: "GET", htu, token });
  const { header } = checkProof(other, { htm: "GET", htu, token });
  assert.notEqual(thumbprint(header.jwk), jkt);
  // The page, which holds the key, goes on.
  assert.equal(await apiStatus(page), 200);
  assert.deepEqual(page.pageErrors, []);
});

test("with --dpop-nonce, a page without the nonce is challenged once and the session goes on", async () => {
  const logins = record("/auth/login");
  const refreshes = record("/auth/refresh");
  const calls = record("/api/me");
  const page = await openDemo(context, nonceServer.url, PARAMS);
  // No cookie yet: restore()'s refresh finds no session; its answer hands out the nonce.
  assert.equal(await page.evaluate(() => window.demo.restored), false);
  await login(page);
  assert.equal(await apiStatus(page), 200);
  // A reload forgets the nonce (and the key): restore()'s refresh, with the cookie now, is
  // challenged, and retried once with the nonce of the challenge.
  await gotoDemo(page, nonceServer.url, PARAMS);
  assert.equal(await page.evaluate(() => window.demo.restored), true, "restored after one retry");
  const seen = new Set([(await held([page]))[0].jti]);
  const next = await sharedNewToken([page], seen);
  assert.ok(next.jkt);
  assert.equal(await apiStatus(page), 200);
  await new Promise((r) => setTimeout(r, 100));

  const htu = (r) => r.url.split("?")[0];
  assert.ok(refreshes[0].answer["dpop-nonce"], "a DPoP endpoint's answer carries the nonce");
  assert.deepEqual(logins.map((r) => r.status), [200], "the login used the nonce it had seen: accepted at once");
  assert.deepEqual(refreshes.map((r) => r.status), [401, 400, 200, 200], "restore (no session), challenge, retry, refresh");
  const challenge = refreshes[1];
  assert.equal("nonce" in checkProof(challenge.headers.dpop, { htm: "POST", htu: htu(challenge) }).payload, false);
  const nonce = challenge.answer["dpop-nonce"];
  assert.ok(nonce, "the challenge hands out a nonce");
  const retried = checkProof(refreshes[2].headers.dpop, { htm: "POST", htu: htu(refreshes[2]) });
  assert.deepEqual(retried.problems, []);
  assert.equal(retried.payload.nonce, nonce, "the retry carries the challenge's nonce");
  for (const r of [...logins, refreshes[3], ...calls]) {
    assert.ok(checkProof(r.headers.dpop, { htm: r.method, htu: htu(r) }).payload.nonce, `${r.url} carries a nonce`);
  }
  assert.deepEqual(calls.map((r) => r.status), [200, 200], "API calls accepted at once");
  assert.deepEqual(await page.evaluate(() => window.demo.events.filter((e) => e.type === "error")), [], "no error event");
  assert.deepEqual(page.pageErrors, []);
});

test("the default entry refuses dpop: true with dpop_unavailable", async () => {
  const page = await openDemo(context, server.url, PARAMS);
  const code = await page.evaluate(async () => {
    const m = await import("/pkg/wasm_token_manager.js");
    await m.default();
    try {
      new m.TokenManager({ dpop: true });
      return "constructed";
    } catch (e) {
      return e.code;
    }
  });
  assert.equal(code, "dpop_unavailable");
});
