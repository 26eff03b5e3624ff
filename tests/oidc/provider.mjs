// A real OpenID Connect provider for the upstream-mode tests: panva's `oidc-provider` on a
// loopback port, with one confidential client (client_secret_basic), access tokens of a few
// seconds, refresh-token rotation on every use, `offline_access`, its development login and
// consent pages (driven by Chromium in the e2e specs), RFC 7009 revocation and RP-initiated
// logout. The listener can be stopped and started again on the same port while grants, keys
// and refresh tokens stay in memory: that is the "provider down" of the failure tests.
//
// Imported by the e2e specs (`startProvider`), or run as a process by the Rust tests:
//   node tests/oidc/provider.mjs --port 0 --redirect-uri URL [--post-logout-redirect-uri URL] [--access-ttl SECS]
//     [--access-token-format jwt|opaque]
// prints `listening on http://127.0.0.1:PORT`, then reads commands on stdin, one a line:
//   stop   closes the listener (and every open connection); prints `stopped`
//   start  listens again on the same port; prints `listening on …`
//   stats  prints `stats {"refreshes":N,"codes":N,"revocations":N,"jwks":N}`
//
// `signingKey` (a private JWK) replaces oidc-provider's fixed development key, so a provider
// started again on the same port can have rotated its keys; `publishedKeys` (public JWKs)
// replaces what its JWKS endpoint answers, so it can sign with a key it never published.

import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import Provider from "oidc-provider";

export const CLIENT_ID = "wasm-token-manager-test";
// A test fixture, not a secret of any deployment.
export const CLIENT_SECRET = "test-client-secret-of-the-loopback-provider";
/** The API the access tokens are for (their `aud`), and its scope. */
export const API_AUDIENCE = "https://api.example.test";
export const API_SCOPE = "api:read";
export const ACCOUNTS = {
  alice: { name: "Alice Liddell", email: "alice@example.test" },
  bob: { name: "Bob Builder", email: "bob@example.test" },
};

/**
 * Starts the provider. `port: 0` picks a free one; `redirectUris` are the client's callbacks.
 * `accessTokenFormat: "opaque"` issues opaque access tokens (reference tokens, as Auth0 does
 * without an API audience) instead of JWTs: the browser package then shows the ID token's
 * claims the server sends beside them.
 * Resolves to `{ issuer, port, stop(), start(), close(), stats }`.
 */
export async function startProvider({
  port = 0,
  redirectUris,
  postLogoutRedirectUris = [],
  accessTtl = 4,
  refreshTtl = 3600,
  accessTokenFormat = "jwt",
  signingKey,
  publishedKeys,
} = {}) {
  const listener = createServer();
  const sockets = new Set();
  listener.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise((ready, fail) => {
    listener.once("error", fail);
    listener.listen(port, "127.0.0.1", ready);
  });
  port = listener.address().port;
  // Another host than the app's `localhost`: the provider is cross-site to the app, as in a
  // deployment, and its cookies are not in the app's jar.
  const issuer = `http://127.0.0.1:${port}`;

  const stats = { refreshes: 0, codes: 0, revocations: 0, jwks: 0 };
  const revocationWaiters = [];
  const refreshTokens = [];
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: redirectUris,
        post_logout_redirect_uris: postLogoutRedirectUris,
      },
    ],
    async findAccount(_ctx, id) {
      const account = ACCOUNTS[id] ?? { name: id, email: `${id}@example.test` };
      return { accountId: id, claims: async () => ({ sub: id, ...account }) };
    },
    claims: { openid: ["sub"], profile: ["name"], email: ["email"] },
    scopes: ["openid", "offline_access", "profile", "email"],
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      // Access tokens for one API, as JWTs (the browser package decodes them for claims):
      // what Keycloak, Entra ID and Auth0 (with an audience) issue; or opaque with
      // `accessTokenFormat: "opaque"`.
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API_AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: API_SCOPE,
          audience: API_AUDIENCE,
          accessTokenTTL: accessTtl,
          accessTokenFormat,
        }),
      },
    },
    pkce: { required: () => true },
    ...(signingKey ? { jwks: { keys: [signingKey] } } : {}),
    ttl: {
      AccessToken: accessTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: refreshTtl,
      Grant: refreshTtl,
      Interaction: 600,
      Session: refreshTtl,
    },
    // Every refresh rotates the refresh token, so the tests prove the server stores the new one.
    rotateRefreshToken: () => true,
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
  });
  provider.on("grant.success", (ctx) => {
    if (ctx.oidc.params.grant_type === "refresh_token") stats.refreshes += 1;
    if (ctx.oidc.params.grant_type === "authorization_code") stats.codes += 1;
  });
  // Opaque refresh tokens are their `jti`: the tests ask the provider about them directly.
  provider.on("refresh_token.saved", (token) => {
    refreshTokens.push(token.jti);
  });
  // oidc-provider emits no event for a successful revocation: counted on the way out.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === "/token/revocation" && ctx.status === 200) {
      stats.revocations += 1;
      for (const done of revocationWaiters.splice(0)) done();
    }
    if (ctx.path === "/jwks" && ctx.status === 200) {
      stats.jwks += 1;
      if (publishedKeys) ctx.body = { keys: publishedKeys };
    }
  });
  // The dev interactions warn on every start; the tests do not need to read that.
  provider.on("server_error", (_ctx, err) => console.error("provider server_error:", err));
  listener.on("request", provider.callback());

  let running = true;
  return {
    issuer,
    port,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    stats,
    /** Every refresh token issued, oldest first. */
    refreshTokens,
    /** Resolves at the next successful RFC 7009 revocation (an event, not a poll). */
    nextRevocation() {
      return new Promise((done) => revocationWaiters.push(done));
    },
    /** Asks the token endpoint to use `refreshToken` itself: `{ status, body }`. */
    async tryRefreshToken(refreshToken) {
      const response = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-www-form-urlencoded",
          Authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString("base64")}`,
        },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken }),
      });
      return { status: response.status, body: await response.json() };
    },
    /** Closes the listener and every open connection; the state stays in memory. */
    async stop() {
      if (!running) return;
      running = false;
      const closed = new Promise((done) => listener.close(done));
      for (const s of sockets) s.destroy();
      await closed;
    },
    /** Listens again on the same port. */
    async start() {
      if (running) return;
      await new Promise((ready, fail) => {
        listener.once("error", fail);
        listener.listen(port, "127.0.0.1", ready);
      });
      running = true;
    },
    close() {
      return this.stop();
    },
  };
}

function argument(argv, name, fallback) {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const all = (name) => argv.flatMap((a, i) => (a === name && i + 1 < argv.length ? [argv[i + 1]] : []));
  const provider = await startProvider({
    port: Number(argument(argv, "--port", "0")),
    redirectUris: all("--redirect-uri"),
    postLogoutRedirectUris: all("--post-logout-redirect-uri"),
    accessTtl: Number(argument(argv, "--access-ttl", "4")),
    accessTokenFormat: argument(argv, "--access-token-format", "jwt"),
  });
  console.log(`listening on ${provider.issuer}`);
  const lines = createInterface({ input: process.stdin });
  lines.on("line", async (line) => {
    switch (line.trim()) {
      case "stop":
        await provider.stop();
        console.log("stopped");
        break;
      case "start":
        await provider.start();
        console.log(`listening on ${provider.issuer}`);
        break;
      case "stats":
        console.log(`stats ${JSON.stringify(provider.stats)}`);
        break;
      default:
        console.log(`unknown command`);
    }
  });
  lines.on("close", () => process.exit(0));
}
