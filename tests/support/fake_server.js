// A fake auth server installed as the page's global `fetch`, for the browser-layer tests.
// It mints real-looking JWTs (unsigned: the browser layer never verifies by default), keeps a
// "refresh cookie" flag as the browser's cookie jar would, records every request, and can be
// told to fail, hang or answer 401.

const b64url = (s) => btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

export class FakeServer {
  constructor(lifetimeSeconds) {
    this.lifetime = lifetimeSeconds;
    this.cookie = false;
    this.issued = 0;
    this.requests = [];
    this.refreshReplies = [];      // queue of "ok" | "hang" | "network" | status numbers | "429:<secs>"
    this.loginStatus = null;       // a status number the login endpoint answers instead of checking
    this.refreshDelayMs = 0;
    this.apiRejects = new Set();   // tokens the API answers 401 for
    this.apiAlways401 = false;
    this.tokens = [];
    // Upstream mode: opaque access tokens with the ID token's claims beside them.
    this.opaque = false;
    // Upstream mode: what logout answers as `end_session_url` (null: the 204 of local accounts).
    this.endSessionUrl = null;
    this.install();
  }

  /** Replaces the page's `fetch` (the constructor does; the Rust test guard may do it again). */
  install() {
    this.realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => this.handle(new Request(input, init));
  }

  uninstall() { globalThis.fetch = this.realFetch; }

  mint() {
    this.issued += 1;
    if (this.opaque) {
      const token = `opaque-${this.issued}-${b64url("reference-token")}`;
      this.tokens.push(token);
      return token;
    }
    const iat = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: "RS256", typ: "at+jwt", kid: "test" }));
    const claims = b64url(JSON.stringify({
      iss: "https://issuer.test", sub: "user-1", sid: "session-1", aud: "api", iat, exp: iat + this.lifetime,
      jti: `t${this.issued}`, name: "Ada Lovelace", roles: ["admin", "dev"],
    }));
    const token = `${header}.${claims}.${b64url("signature-" + this.issued)}`;
    this.tokens.push(token);
    return token;
  }

  tokenResponse() {
    const body = { access_token: this.mint(), token_type: "Bearer", expires_in: this.lifetime };
    if (this.opaque) {
      const iat = Math.floor(Date.now() / 1000);
      body.id_token_claims = {
        iss: "https://idp.test", sub: "user-1", sid: "session-1", aud: "spa", iat, exp: iat + 3600,
        name: "Ada Lovelace (ID token)", email: "ada@example.test",
      };
    }
    return new Response(JSON.stringify(body), {
      status: 200, headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
    });
  }

  count(path) { return this.requests.filter((r) => new URL(r.url).pathname === path).length; }
  lastRequest(path) { return [...this.requests].reverse().find((r) => new URL(r.url).pathname === path); }
  requestsTo(path) { return this.requests.filter((r) => new URL(r.url).pathname === path); }
  latestToken() { return this.tokens[this.tokens.length - 1] ?? null; }
  pushRefreshReply(reply) { this.refreshReplies.push(reply); }
  rejectToken(token) { this.apiRejects.add(token); }

  async handle(request) {
    const url = new URL(request.url);
    const record = {
      url: request.url, method: request.method, credentials: request.credentials,
      authorization: request.headers.get("Authorization"),
      csrf: request.headers.get("X-Requested-With"),
      body: request.method === "GET" ? null : await request.clone().text(),
    };
    this.requests.push(record);
    if (url.origin !== location.origin) {
      return new Response("foreign", { status: 200 });
    }
    switch (url.pathname) {
      case "/auth/login": {
        if (this.loginStatus) return errorResponse(this.loginStatus);
        const creds = JSON.parse(record.body || "{}");
        if (creds.username === "demo" && creds.password === "demo-password") {
          this.cookie = true;
          return this.tokenResponse();
        }
        return new Response(JSON.stringify({ error: "invalid_credentials" }), { status: 401 });
      }
      case "/auth/refresh": {
        if (record.csrf !== "wasm-token-manager") return new Response("{}", { status: 400 });
        const reply = this.refreshReplies.shift() ?? "ok";
        if (this.refreshDelayMs) await new Promise((r) => setTimeout(r, this.refreshDelayMs));
        if (reply === "hang") {
          return new Promise((_, reject) => {
            request.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
          });
        }
        if (reply === "network") throw new TypeError("Failed to fetch");
        if (typeof reply === "string" && reply.startsWith("429:")) {
          return new Response(JSON.stringify({ error: "rate_limited" }), { status: 429, headers: { "Retry-After": reply.slice(4) } });
        }
        if (typeof reply === "number") {
          if (reply === 401) this.cookie = false;
          return errorResponse(reply);
        }
        if (!this.cookie) return new Response(JSON.stringify({ error: "invalid_grant" }), { status: 401 });
        return this.tokenResponse();
      }
      case "/auth/logout":
        this.cookie = false;
        if (this.endSessionUrl !== null) {
          return new Response(JSON.stringify({ end_session_url: this.endSessionUrl }), {
            status: 200, headers: { "Content-Type": "application/json" },
          });
        }
        return new Response(null, { status: 204 });
      default: {
        const auth = record.authorization ?? "";
        const token = auth.replace(/^Bearer /, "");
        if (this.apiAlways401 || !auth.startsWith("Bearer ") || this.apiRejects.has(token)) {
          return new Response(JSON.stringify({ error: "invalid_token" }), { status: 401 });
        }
        return new Response(JSON.stringify({ ok: true, path: url.pathname, body: record.body }), { status: 200 });
      }
    }
  }
}

/** An error answer with the reference server's code for the status. */
function errorResponse(status) {
  const error = { 401: "invalid_grant", 403: "forbidden_origin", 429: "rate_limited" }[status] ?? "server_error";
  return new Response(JSON.stringify({ error }), { status, headers: { "Content-Type": "application/json" } });
}

/** An unsigned JWT with the given claims, as any script of the origin could make one. */
export function forgeToken(claims) {
  const header = b64url(JSON.stringify({ alg: "RS256", typ: "at+jwt", kid: "test" }));
  return `${header}.${b64url(JSON.stringify(claims))}.${b64url("forged")}`;
}

/** The cross-tab channel of managers whose refresh endpoint is `refreshPath` (page origin). */
function channelName(refreshPath) {
  return `wasm-token-manager:${new URL(refreshPath, location.href).href}`;
}

/** Posts a token announcement on the managers' channel, as a hostile same-origin script can. */
export function announceOnChannel(refreshPath, token, receivedAt, lifetimeMs) {
  const channel = new BroadcastChannel(channelName(refreshPath));
  channel.postMessage({ v: 1, type: "token", token, receivedAt, lifetimeMs });
  channel.close();
}

/**
 * Posts a token announcement, then `ask`, from one channel, and resolves with the first token
 * a manager answers (rejects after `ms`). Messages of one sender arrive in order, so once the
 * answer is in, the announcement has been handled.
 */
export function announceThenAsk(refreshPath, token, receivedAt, lifetimeMs, ms) {
  const channel = new BroadcastChannel(channelName(refreshPath));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { channel.close(); reject(new Error(`no answer within ${ms} ms`)); }, ms);
    channel.onmessage = (e) => {
      if (e.data && e.data.type === "token") { clearTimeout(timer); channel.close(); resolve(e.data); }
    };
    channel.postMessage({ v: 1, type: "token", token, receivedAt, lifetimeMs });
    channel.postMessage({ v: 1, type: "ask" });
  });
}

/**
 * Posts `messages` (token announcements of any shape), then `ask`, from one channel, and
 * resolves with the first token a manager answers (rejects after `ms`): once it is in, every
 * message before it has been handled.
 */
export function postThenAsk(refreshPath, messages, ms) {
  const channel = new BroadcastChannel(channelName(refreshPath));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { channel.close(); reject(new Error(`no answer within ${ms} ms`)); }, ms);
    channel.onmessage = (e) => {
      if (e.data && e.data.type === "token") { clearTimeout(timer); channel.close(); resolve(e.data); }
    };
    for (const m of messages) channel.postMessage(m);
    channel.postMessage({ v: 1, type: "ask" });
  });
}

/** Resolves with the detail of the next `type` event of `target`, rejects after `ms`. */
export function nextEvent(target, type, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} event within ${ms} ms`)), ms);
    const listener = (e) => { clearTimeout(timer); target.removeEventListener(type, listener); resolve(e.detail); };
    target.addEventListener(type, listener);
  });
}

/** Everything the page could have persisted, as one string, to search for tokens. */
export async function persistedState() {
  const parts = [];
  for (const store of [localStorage, sessionStorage]) {
    for (let i = 0; i < store.length; i++) parts.push(store.key(i), store.getItem(store.key(i)));
  }
  parts.push(document.cookie);
  if (indexedDB.databases) parts.push(JSON.stringify(await indexedDB.databases()));
  if (globalThis.caches) {
    for (const name of await caches.keys()) {
      parts.push(name);
      const cache = await caches.open(name);
      for (const req of await cache.keys()) parts.push(req.url, await (await cache.match(req)).text());
    }
  }
  parts.push(location.href);
  return parts.join("\n");
}

/** Runs `n` calls of `f` at once and resolves with their results. */
export function concurrently(n, f) {
  return Promise.all(Array.from({ length: n }, () => f()));
}

export function errorCode(e) { return e && e.code; }
