// The provider rotates its signing keys (issue 19): the server read the provider's JWKS at
// start-up; an ID token with a `kid` it does not know makes it read the JWKS again (discovery's
// jwks_uri, at most once per cooldown, 60 s), then validate. The real provider
// (tests/oidc/provider.mjs) is stopped and started again on the same port with another
// signing key, the server is not restarted. A key the provider never published stays refused.
// Over plain HTTP (tests/oidc/signin.mjs): a browser adds nothing here.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, test } from "node:test";

import { startProvider } from "../oidc/provider.mjs";
import { callback, setCookie, signInUntilCallback } from "../oidc/signin.mjs";
import { clientSecretFile, upstreamArgs } from "../oidc/upstream.mjs";
import { startServer } from "./helpers/server.mjs";
import { freePort } from "./helpers/ports.mjs";

let provider;
let providerPort;
let servers = [];
let secretFile;
const appPorts = [];

/** A fresh RS256 key pair as JWKs named `kid`: the private one for the provider, the public one. */
function signingKey(kid) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const meta = { kid, alg: "RS256", use: "sig" };
  return { private: { ...privateKey.export({ format: "jwk" }), ...meta }, public: { ...publicKey.export({ format: "jwk" }), ...meta } };
}

/** The provider, (re)started on the same port (its issuer stays the same) with `options`. */
async function restartProvider(options) {
  await provider?.close();
  provider = await startProvider({
    port: providerPort,
    redirectUris: appPorts.map((p) => `http://localhost:${p}/auth/callback`),
    accessTtl: 60,
    ...options,
  });
}

function startUpstreamServer(name, port) {
  return startServer({ name, port, args: upstreamArgs({ issuer: provider.issuer, port, secretFile }) });
}

/** A whole sign-in at `server`: the callback's answer. */
async function signIn(server) {
  const { callback: url, stateCookie } = await signInUntilCallback(server, provider.issuer, { account: "alice" });
  return callback(server, url, stateCookie);
}

const [first, second, unpublished] = [signingKey("first"), signingKey("second"), signingKey("never-published")];

before(async () => {
  providerPort = await freePort();
  appPorts.push(await freePort(), await freePort());
  secretFile = clientSecretFile("oidc-jwks");
  await restartProvider({ signingKey: first.private });
  servers.push(await startUpstreamServer("oidc-jwks", appPorts[0]));
});
after(async () => {
  for (const s of servers) await s.stop();
  await provider?.close();
});

test("after the provider rotated its signing key, a sign-in reads its JWKS again and succeeds (server not restarted)", async () => {
  const control = await signIn(servers[0]);
  assert.equal(control.status, 303, "signed by the key the server read at start-up");
  await restartProvider({ signingKey: second.private });
  assert.equal(provider.stats.jwks, 0);
  const rotated = await signIn(servers[0]);
  assert.equal(rotated.status, 303, JSON.stringify(rotated.body));
  assert.ok(setCookie(rotated.response, "__Host-refresh"), "a session started");
  assert.equal(provider.stats.jwks, 1, "the JWKS read once, for the unknown kid");
  // The next sign-in knows the key: no read.
  assert.equal((await signIn(servers[0])).status, 303);
  assert.equal(provider.stats.jwks, 1);
});

test("an ID token signed by a key the provider never published is refused, and reads the JWKS at most once per cooldown", async () => {
  // The provider signs with a key its JWKS does not list (it lists the previous one).
  await restartProvider({ signingKey: unpublished.private, publishedKeys: [second.public] });
  // The server of the test above read the JWKS less than a cooldown ago: refused, no read.
  const inCooldown = await signIn(servers[0]);
  assert.equal(inCooldown.status, 400);
  assert.equal(inCooldown.body.error, "invalid_id_token");
  assert.equal(setCookie(inCooldown.response, "__Host-refresh"), undefined);
  assert.equal(provider.stats.jwks, 0, "no read within the cooldown");
  // A server started now reads the JWKS at discovery, then once more for the unknown kid,
  // and still refuses: the key is not there.
  servers.push(await startUpstreamServer("oidc-jwks-fresh", appPorts[1]));
  assert.equal(provider.stats.jwks, 1, "discovery's read");
  const refused = await signIn(servers[1]);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error, "invalid_id_token");
  assert.equal(setCookie(refused.response, "__Host-refresh"), undefined);
  assert.equal(provider.stats.jwks, 2, "read again once for the unknown kid");
});
