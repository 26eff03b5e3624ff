// The upstream mode's sign-in under attack, over plain HTTP (no browser: it adds nothing to
// these): the real server and the real provider (tests/oidc/provider.mjs), signed in through
// the provider's own login and consent forms. Each attack must be refused, and a control run
// of the same steps must succeed, so no refusal is an accident of the harness.
//
// The ID-token attacks need a token the provider would never issue. A second server trusts a
// small loopback "provider" that wraps the real one: it serves the real discovery document with
// its own issuer, token endpoint and JWKS, forwards the code exchange to the real token
// endpoint, and re-signs the real ID token with its own key after altering one thing (iss, aud,
// nonce, the signature, or alg: none). Everything else is the real provider's.

import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { after, before, test } from "node:test";

import { startProvider } from "../oidc/provider.mjs";
import { callback, setCookie, signInUntilCallback as signInAt } from "../oidc/signin.mjs";
import { clientSecretFile, upstreamArgs } from "../oidc/upstream.mjs";
import { startServer } from "./helpers/server.mjs";
import { freePort } from "./helpers/ports.mjs";

let provider;
let direct; // the server trusting the real provider
let proxied; // the server trusting the tampering wrapper
let wrapper;

const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** The wrapper: `mode` says what it alters in the next ID tokens ("" alters nothing). */
async function startWrapper(realIssuer) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: "wrapper", alg: "RS256", use: "sig" };
  const state = { mode: "" };
  const server = createHttpServer(async (req, res) => {
    const self = `http://127.0.0.1:${server.address().port}`;
    const send = (status, body) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.url === "/.well-known/openid-configuration") {
      const doc = await (await fetch(`${realIssuer}/.well-known/openid-configuration`)).json();
      return send(200, { ...doc, issuer: self, token_endpoint: `${self}/token`, jwks_uri: `${self}/jwks` });
    }
    if (req.url === "/jwks") return send(200, { keys: [jwk] });
    if (req.url === "/token" && req.method === "POST") {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const real = await fetch(`${realIssuer}/token`, {
        method: "POST",
        headers: { "Content-Type": req.headers["content-type"], Authorization: req.headers.authorization },
        body: Buffer.concat(chunks),
      });
      const body = await real.json();
      if (body.id_token) {
        const claims = JSON.parse(Buffer.from(body.id_token.split(".")[1], "base64url"));
        claims.iss = self;
        let header = { alg: "RS256", typ: "JWT", kid: "wrapper" };
        if (state.mode === "iss") claims.iss = "https://attacker.example";
        if (state.mode === "aud") claims.aud = "some-other-client";
        if (state.mode === "nonce") claims.nonce = "a-nonce-of-another-sign-in";
        if (state.mode === "alg-none") header = { alg: "none", typ: "JWT" };
        const input = `${b64url(header)}.${b64url(claims)}`;
        let signature = state.mode === "alg-none" ? "" : sign("sha256", Buffer.from(input), privateKey).toString("base64url");
        if (state.mode === "signature") signature = signature.slice(0, 10) + (signature[10] === "A" ? "B" : "A") + signature.slice(11);
        body.id_token = `${input}.${signature}`;
      }
      return send(real.status, body);
    }
    send(404, { error: "not_found" });
  });
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  return { issuer: `http://127.0.0.1:${server.address().port}`, state, close: () => new Promise((d) => server.close(d)) };
}

before(async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  provider = await startProvider({
    redirectUris: [`http://localhost:${p1}/auth/callback`, `http://localhost:${p2}/auth/callback`],
    accessTtl: 60,
  });
  wrapper = await startWrapper(provider.issuer);
  const secretFile = clientSecretFile("oidc-attacks");
  [direct, proxied] = await Promise.all([
    startServer({ name: "oidc-attacks", port: p1, args: upstreamArgs({ issuer: provider.issuer, port: p1, secretFile }) }),
    startServer({ name: "oidc-attacks-wrapped", port: p2, args: upstreamArgs({ issuer: wrapper.issuer, port: p2, secretFile }) }),
  ]);
});
after(async () => {
  await direct?.stop();
  await proxied?.stop();
  await wrapper?.close();
  await provider?.close();
});

/** A sign-in at `server` through the real provider's forms, up to the callback. */
const signInUntilCallback = (server, options) => signInAt(server, provider.issuer, options);

test("the control: the same steps sign in, through the real provider and through the wrapper", async () => {
  for (const server of [direct, proxied]) {
    wrapper.state.mode = "";
    const { callback: url, stateCookie } = await signInUntilCallback(server);
    const { status, response } = await callback(server, url, stateCookie);
    assert.equal(status, 303, `${server.url}`);
    assert.equal(response.headers.get("location"), "/");
    assert.ok(setCookie(response, "__Host-refresh"), "the refresh cookie is set");
    assert.ok(response.headers.getSetCookie().some((c) => c.startsWith("__Host-oidc-state=;")), "the state cookie is cleared");
  }
});

test("a callback whose state differs from the cookie's is refused", async () => {
  const { callback: url, stateCookie } = await signInUntilCallback(direct);
  url.searchParams.set("state", "forged-state");
  const { status, body } = await callback(direct, url, stateCookie);
  assert.equal(status, 400);
  assert.equal(body.error, "invalid_state");
});

test("a callback without a state parameter is refused", async () => {
  const { callback: url, stateCookie } = await signInUntilCallback(direct);
  url.searchParams.delete("state");
  const { status, body } = await callback(direct, url, stateCookie);
  assert.equal(status, 400);
  assert.equal(body.error, "invalid_state");
});

test("a callback without the state cookie is refused (login CSRF: a code injected into another browser)", async () => {
  const { callback: url } = await signInUntilCallback(direct);
  const { status, body } = await callback(direct, url, undefined);
  assert.equal(status, 400);
  assert.equal(body.error, "invalid_state");
});

test("a state cookie that was altered is refused", async () => {
  const { callback: url, stateCookie } = await signInUntilCallback(direct);
  const [name, value] = stateCookie.split("=");
  const altered = `${name}=${value.slice(0, 20)}${value[20] === "A" ? "B" : "A"}${value.slice(21)}`;
  const { status, body } = await callback(direct, url, altered);
  assert.equal(status, 400);
  assert.equal(body.error, "invalid_state");
});

test("a replayed code is refused by the provider and starts no session", async () => {
  const { callback: url, stateCookie } = await signInUntilCallback(direct);
  assert.equal((await callback(direct, url, stateCookie)).status, 303);
  const replay = await callback(direct, url, stateCookie);
  assert.equal(replay.status, 401);
  assert.equal(replay.body.error, "invalid_grant");
  assert.equal(setCookie(replay.response, "__Host-refresh"), undefined);
});

test("returnTo to another origin is refused before the sign-in starts (no open redirect)", async () => {
  for (const target of ["https://attacker.example/", "//attacker.example/", "/\\attacker.example", "/admin"]) {
    const response = await fetch(`${direct.url}/auth/authorize?returnTo=${encodeURIComponent(target)}`, { redirect: "manual" });
    assert.equal(response.status, 400, target);
    assert.equal((await response.json()).error, "invalid_request");
    assert.equal(response.headers.get("location"), null);
  }
});

for (const [mode, what] of [
  ["iss", "another issuer"],
  ["aud", "another audience"],
  ["nonce", "the nonce of another sign-in"],
  ["signature", "a signature that does not verify"],
  ["alg-none", "alg: none"],
]) {
  test(`an ID token with ${what} is refused and starts no session`, async () => {
    wrapper.state.mode = mode;
    try {
      const { callback: url, stateCookie } = await signInUntilCallback(proxied);
      const { status, body, response } = await callback(proxied, url, stateCookie);
      assert.equal(status, 400);
      assert.equal(body.error, "invalid_id_token");
      assert.equal(setCookie(response, "__Host-refresh"), undefined);
    } finally {
      wrapper.state.mode = "";
    }
  });
}

/** `POST /auth/refresh` with `cookie` as the package sends it, from outside a browser. */
function refreshWith(server, cookie) {
  return fetch(`${server.url}/auth/refresh`, {
    method: "POST",
    headers: { Cookie: cookie, "X-Requested-With": "wasm-token-manager" },
  });
}

test("a replayed rotated cookie revokes the family and the provider's refresh token too", async () => {
  const { callback: url, stateCookie } = await signInUntilCallback(direct);
  const signedIn = await callback(direct, url, stateCookie);
  assert.equal(signedIn.status, 303);
  const held = provider.refreshTokens.at(-1);
  const stolen = setCookie(signedIn.response, "__Host-refresh");
  // The owner refreshes: the cookie rotates (the provider's token is fresh: no upstream call).
  const rotated = await refreshWith(direct, stolen);
  assert.equal(rotated.status, 200);
  assert.notEqual(setCookie(rotated, "__Host-refresh"), stolen);
  // The thief replays the old cookie. Within the grace window it is answered a few times
  // (--grace-replays, 10 by default), then it is reuse: the family is revoked.
  const revoked = provider.nextRevocation();
  let refused;
  for (let i = 0; i < 20 && !refused; i++) {
    const r = await refreshWith(direct, stolen);
    if (r.status !== 200) refused = r;
  }
  assert.equal(refused?.status, 401);
  assert.equal((await refused.json()).error, "invalid_grant");
  // The server revokes the provider's refresh token after answering (best effort); a
  // server that does not fails here rather than hangs.
  let timer;
  const none = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error("no upstream revocation after the reuse")), 10_000);
  });
  await Promise.race([revoked, none]).finally(() => clearTimeout(timer));
  const upstream = await provider.tryRefreshToken(held);
  assert.equal(upstream.status, 400);
  assert.equal(upstream.body.error, "invalid_grant");
  // And the owner's new cookie is worthless too.
  assert.equal((await refreshWith(direct, setCookie(rotated, "__Host-refresh"))).status, 401);
});

test("password login is off in the upstream mode", async () => {
  const response = await fetch(`${direct.url}/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: "oidc:mallory-target", password: "" }),
  });
  assert.equal(response.status, 404);
});
