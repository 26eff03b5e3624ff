// The checks, in the order they run. Each one is self-contained: it signs in with its own
// session when it needs one, so a failure in one check does not cascade into the next, and a
// rotated cookie is replayed at most twice in any family (backends may cap grace replays).
// Refused logins (two wrong passwords, form bodies, a foreign Origin) run last: backends may
// throttle logins after failures.

import { createPublicKey, randomBytes, verify as verifySignature, constants } from "node:crypto";
import {
  Skip,
  decodeJwt,
  describe,
  errorBodyProblem,
  expectError,
  expectRefreshCookie,
  expectStatus,
  expectTokenResponse,
  hasNoStore,
} from "./expect.mjs";

// What the browser package sends with every login, refresh and logout (src/http.rs).
const AUTH_HEADERS = { "x-requested-with": "wasm-token-manager", accept: "application/json" };
const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

/** A check: `id` (stable, printed), a one-line title, its level, and the function running it. */
function check(id, title, run, { level = "required", prepare } = {}) {
  return { id, title, level, run, prepare };
}

/** State and helpers every check shares. */
export class Context {
  constructor({ backend, config, secrets, credentials }) {
    Object.assign(this, { backend, config, secrets, credentials });
    this.paths = config.paths;
    this.crossOrigin = config.origin !== backend.baseUrl.origin;
    this.firstLogin = undefined;
  }

  /** Logs in with the configured account; a Skip if that fails (login.token-response says why). */
  async login() {
    const { username, password } = this.credentials;
    const answer = await this.backend.request("POST", this.paths.login, { json: { username, password }, headers: AUTH_HEADERS });
    const cookie = answer.cookies(this.backend.cookieName)[0]?.value;
    const token = answer.json?.access_token;
    if (answer.status !== 200 || typeof token !== "string" || !cookie) {
      throw new Skip(`the login it needs did not succeed (${describe(answer)}${cookie ? "" : ", no refresh cookie"}): see login.token-response`);
    }
    return { answer, token, cookie };
  }

  /** The first login of the run, shared by the checks that only read its answer. */
  async sharedLogin() {
    this.firstLogin ??= this.login().catch((e) => e);
    const result = await this.firstLogin;
    if (result instanceof Error) throw result;
    return result;
  }

  /** A refresh as the browser package sends it: the cookie, the CSRF and Accept headers, no body. */
  refresh(cookie, { headers = {}, ...rest } = {}) {
    return this.backend.request("POST", this.paths.refresh, { cookie, headers: { ...AUTH_HEADERS, ...headers }, ...rest });
  }

  logout(cookie, { headers = {}, ...rest } = {}) {
    return this.backend.request("POST", this.paths.logout, { cookie, headers: { ...AUTH_HEADERS, ...headers }, ...rest });
  }

  resource(bearer, options = {}) {
    return this.backend.request("GET", this.paths.resource, { bearer, ...options });
  }

  /** The new refresh cookie's value in `answer`, or undefined. */
  cookieOf(answer) {
    return answer.cookies(this.backend.cookieName)[0]?.value;
  }

  /** A refresh that must succeed for the check to go on; otherwise the check fails here. */
  async refreshOk(t, cookie, what) {
    const answer = await this.refresh(cookie);
    const next = this.cookieOf(answer);
    t.expect(what, "200 with a refresh cookie", `${describe(answer)}${next ? "" : ", no refresh cookie"}`, answer.status === 200 && next);
    return answer.status === 200 ? { answer, cookie: next, token: answer.json?.access_token } : undefined;
  }

  needsCrossOrigin() {
    if (!this.crossOrigin) {
      throw new Skip(`--origin is the backend's own origin (${this.config.origin}): a same-origin deployment needs no CORS; pass the SPA's origin with --origin to check it`);
    }
  }

  needsSwitches() {
    if (!this.config.testSwitches) {
      throw new Skip("needs a way to make the backend answer 429/503: pass --test-switches if it implements the reference server's POST /test/fail-refresh");
    }
  }

  /** Sets the reference server's fail-refresh switch (sent like a refresh: it may take the same CSRF checks). */
  async failNextRefresh(body) {
    const answer = await this.backend.request("POST", this.config.paths.failRefresh, { json: body, headers: AUTH_HEADERS });
    if (answer.status !== 200) throw new Skip(`POST ${this.config.paths.failRefresh} answered ${describe(answer)}: the switch is not available`);
  }
}

/** A random, well-formed refresh cookie value no backend has issued. */
function unknownCookie() {
  return randomBytes(32).toString("base64url");
}

const sleep = (ms) => new Promise((done) => setTimeout(done, Math.max(0, ms)));

/** Signs in, rotates once and notes when: the reuse checks replay the first cookie after the grace window. */
async function rotatedFamily(ctx) {
  const first = await ctx.login();
  const rotated = await ctx.refresh(first.cookie);
  // Taken after the answer, so the backend's rotation time is no later than this.
  const rotatedBy = Date.now();
  const second = ctx.cookieOf(rotated);
  if (rotated.status !== 200 || !second) throw new Skip(`the first refresh failed (${describe(rotated)}): see refresh.rotates-cookie`);
  return { first, second, secondToken: rotated.json?.access_token, rotatedBy };
}

async function replayAfterGrace(ctx, prepared) {
  if (prepared instanceof Error) throw prepared;
  // A whole second past the window from when the rotation was answered: a backend counting
  // whole seconds then sees `now - rotated_at > grace` however slowly it worked.
  await sleep(prepared.rotatedBy + (ctx.config.graceSeconds + 1) * 1000 - Date.now());
  return ctx.refresh(prepared.first.cookie);
}

function verifyJwtSignature(jwt, jwk) {
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const data = Buffer.from(`${jwt.parts[0]}.${jwt.parts[1]}`);
  const signature = Buffer.from(jwt.parts[2], "base64url");
  const alg = jwt.header.alg;
  const hash = { 256: "sha256", 384: "sha384", 512: "sha512" }[alg.slice(2)];
  if (alg === "EdDSA") return verifySignature(null, data, key, signature);
  if (alg.startsWith("RS")) return verifySignature(hash, data, key, signature);
  if (alg.startsWith("PS")) {
    return verifySignature(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
  }
  if (alg.startsWith("ES")) return verifySignature(hash, data, { key, dsaEncoding: "ieee-p1363" }, signature);
  return false;
}

/** The token with one signature character changed: well-formed, signed by nobody. */
function forge(token) {
  const [h, p, s] = token.split(".");
  const i = Math.floor(s.length / 2);
  return `${h}.${p}.${s.slice(0, i)}${s[i] === "A" ? "B" : "A"}${s.slice(i + 1)}`;
}

function listIncludes(header, name) {
  return (header ?? "")
    .split(",")
    .map((v) => v.trim().toLowerCase())
    .includes(name.toLowerCase());
}

export const CHECKS = [
  check("transport.secure", "the backend is reached over HTTPS (or plain HTTP on loopback only)", async (t, ctx) => {
    const url = ctx.backend.baseUrl;
    t.expect(
      "base URL",
      "https:, or http: on localhost / 127.x / [::1] (browsers drop Secure cookies elsewhere; the package refuses such endpoints)",
      `${url.protocol}//${url.host}`,
      url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK.test(url.hostname)),
    );
  }),

  check("jwks.shape", "the JWKS publishes public signing keys only", async (t, ctx) => {
    const answer = await ctx.backend.request("GET", ctx.paths.jwks, { origin: null });
    if (!expectStatus(t, answer, 200)) return;
    const keys = answer.json?.keys;
    if (!t.expect("keys", "a non-empty array", Array.isArray(keys) ? `${keys.length} keys` : JSON.stringify(typeof keys), Array.isArray(keys) && keys.length > 0)) return;
    const kids = new Set();
    keys.forEach((k, i) => {
      const problems = [];
      if (typeof k.kid !== "string" || !k.kid) problems.push("no kid");
      else if (kids.has(k.kid)) problems.push("duplicate kid");
      else kids.add(k.kid);
      if (!["RSA", "EC", "OKP"].includes(k.kty)) problems.push(`kty ${JSON.stringify(k.kty)}`);
      if (!ASYMMETRIC.includes(k.alg)) problems.push(`alg ${JSON.stringify(k.alg)}`);
      if (k.use !== "sig") problems.push(`use ${JSON.stringify(k.use)}`);
      const secret = PRIVATE_MEMBERS.filter((m) => m in k);
      if (secret.length) problems.push(`PRIVATE members ${secret.join(", ")}`);
      const pub = { RSA: ["n", "e"], EC: ["crv", "x", "y"], OKP: ["crv", "x"] }[k.kty] ?? [];
      const missing = pub.filter((m) => typeof k[m] !== "string");
      if (missing.length) problems.push(`missing ${missing.join(", ")}`);
      t.expect(
        `keys[${i}]`,
        "kid, kty RSA|EC|OKP with its public members, an asymmetric alg, use sig, no private members",
        `kid ${JSON.stringify(k.kid)}, kty ${k.kty}, alg ${k.alg}, use ${k.use}${problems.length ? ` (${problems.join("; ")})` : ""}`,
        problems.length === 0,
      );
    });
  }),

  check("login.token-response", "login answers a token response that no cache keeps", async (t, ctx) => {
    const result = await ctx.sharedLogin().catch((e) => e);
    const answer = result instanceof Skip ? null : result.answer;
    if (!answer) {
      // sharedLogin only says "skip"; here the failure is the finding, so show the answer.
      const { username, password } = ctx.credentials;
      const again = await ctx.backend.request("POST", ctx.paths.login, { json: { username, password }, headers: AUTH_HEADERS });
      expectTokenResponse(t, again, ctx);
      return;
    }
    expectTokenResponse(t, answer, ctx);
  }),

  check("login.refresh-cookie", "login sets the refresh cookie with the required attributes", async (t, ctx) => {
    const { answer } = await ctx.sharedLogin();
    expectRefreshCookie(t, answer, ctx.backend);
  }),

  check(
    "login.cookie-value",
    "the refresh cookie carries at least 256 bits and is not the access token",
    async (t, ctx) => {
      const { cookie, token } = await ctx.sharedLogin();
      t.expect("length", "at least 43 characters (256 bits of base64url)", `${cookie.length} characters`, cookie.length >= 43);
      t.expect("value", "not the access token", cookie === token ? "the access token" : "another value", cookie !== token);
    },
    { level: "recommended" },
  ),

  check("access-token.header", "the access token is signed with an asymmetric key named by kid", async (t, ctx) => {
    const { token } = await ctx.sharedLogin();
    const jwt = decodeJwt(token);
    if (!t.expect("access_token", "a JWT", "not a JWT", jwt)) return;
    t.expect("alg", `one of ${ASYMMETRIC.join(", ")} (never none or HMAC)`, JSON.stringify(jwt.header.alg), ASYMMETRIC.includes(jwt.header.alg));
    t.expect("kid", "a string naming a JWKS key", JSON.stringify(jwt.header.kid), typeof jwt.header.kid === "string" && jwt.header.kid);
    const carried = ["jwk", "jku", "x5u", "x5c", "crit"].filter((m) => m in jwt.header);
    t.expect("header members", "no jwk, jku, x5u, x5c or crit", carried.length ? carried.join(", ") : "none of them", carried.length === 0);
  }),

  check(
    "access-token.claims",
    "the access token carries typ at+jwt and the registered claims, with exp - iat = expires_in",
    async (t, ctx) => {
      const { token, answer } = await ctx.sharedLogin();
      const jwt = decodeJwt(token);
      if (!t.expect("access_token", "a JWT", "not a JWT", jwt)) return;
      const typ = String(jwt.header.typ ?? "");
      t.expect("typ", '"at+jwt" (RFC 9068)', JSON.stringify(jwt.header.typ), ["at+jwt", "application/at+jwt"].includes(typ.toLowerCase()));
      const c = jwt.payload;
      const missing = ["iss", "sub", "aud", "exp", "iat", "jti"].filter((k) => !(k in c));
      t.expect("claims", "iss, sub, aud, exp, iat, jti", missing.length ? `missing ${missing.join(", ")}` : "all present", missing.length === 0);
      const lifetime = c.exp - c.iat;
      const expiresIn = answer.json?.expires_in;
      t.expect("exp - iat", `expires_in (${expiresIn}) ± 2 s`, Number.isFinite(lifetime) ? `${lifetime}` : "not computable", Math.abs(lifetime - expiresIn) <= 2);
    },
    { level: "recommended" },
  ),

  check("access-token.verifies-with-jwks", "the access token's signature verifies with the JWKS key its kid names", async (t, ctx) => {
    const { token } = await ctx.sharedLogin();
    const jwt = decodeJwt(token);
    if (!t.expect("access_token", "a JWT", "not a JWT", jwt)) return;
    const jwks = await ctx.backend.request("GET", ctx.paths.jwks, { origin: null });
    const keys = Array.isArray(jwks.json?.keys) ? jwks.json.keys : [];
    const key = keys.find((k) => k.kid === jwt.header.kid);
    if (!t.expect("JWKS key", `one with kid ${JSON.stringify(jwt.header.kid)}`, key ? "found" : `not among ${keys.length} keys (${describe(jwks)})`, key)) return;
    t.expect("key alg", `the token's alg ${jwt.header.alg}`, JSON.stringify(key.alg), key.alg === jwt.header.alg);
    let verified;
    try {
      verified = verifyJwtSignature(jwt, key);
    } catch (e) {
      verified = `error: ${e.message}`;
    }
    t.expect("signature", "verifies", verified === true ? "verifies" : verified === false ? "does not verify" : verified, verified === true);
  }),

  check("resource.accepts-token", "the resource endpoint answers a valid access token", async (t, ctx) => {
    const { token } = await ctx.sharedLogin();
    const answer = await ctx.resource(token);
    expectStatus(t, answer, 200);
    const body = answer.json;
    t.expect("body", "a JSON object", body && typeof body === "object" && !Array.isArray(body) ? "a JSON object" : describe(answer), body && typeof body === "object");
  }),

  check("resource.requires-token", "the resource endpoint answers 401 with WWW-Authenticate: Bearer without a token", async (t, ctx) => {
    const answer = await ctx.resource(undefined);
    t.expect(`${answer.method} ${answer.path}`, "401", describe(answer), answer.status === 401);
    const challenge = answer.header("www-authenticate");
    t.expect("WWW-Authenticate", "Bearer …", challenge ?? "none", /^bearer\b/i.test(challenge ?? ""));
  }),

  check("resource.rejects-forged-signature", "a token with a broken signature gets 401 invalid_token", async (t, ctx) => {
    const { token } = await ctx.sharedLogin();
    const forged = ctx.secrets.token(forge(token));
    const answer = await ctx.resource(forged);
    expectError(t, answer, 401, "invalid_token", "forged token");
    const challenge = answer.header("www-authenticate");
    t.expect("WWW-Authenticate", 'Bearer error="invalid_token"', challenge ?? "none", /^bearer\b.*error="invalid_token"/i.test(challenge ?? ""));
  }),

  check("resource.rejects-alg-none", 'an unsigned token (alg "none") gets 401', async (t, ctx) => {
    const { token } = await ctx.sharedLogin();
    const jwt = decodeJwt(token);
    if (!jwt) t.skip("the login did not answer a JWT: see login.token-response");
    const header = Buffer.from(JSON.stringify({ ...jwt.header, alg: "none" })).toString("base64url");
    const unsigned = ctx.secrets.token(`${header}.${jwt.parts[1]}.`);
    const answer = await ctx.resource(unsigned);
    t.expect('alg "none" token', "401", describe(answer), answer.status === 401);
  }),

  check("refresh.rotates-cookie", "every refresh answers a token response and a new cookie", async (t, ctx) => {
    const first = await ctx.login();
    const answer = await ctx.refresh(first.cookie);
    if (!expectTokenResponse(t, answer, ctx)) return;
    const second = expectRefreshCookie(t, answer, ctx.backend);
    if (!second) return;
    t.expect("new cookie", "differs from the one presented", second === first.cookie ? "the same value" : "a new value", second !== first.cookie);
    const next = await ctx.refreshOk(t, second, "refresh with the new cookie");
    if (next) t.expect("third cookie", "differs again", next.cookie === second ? "the same value" : "a new value", next.cookie !== second);
  }),

  check("refresh.refuses-unknown-cookie", "a refresh without a cookie, or with one never issued, is refused with invalid_grant", async (t, ctx) => {
    expectError(t, await ctx.refresh(undefined), 401, "invalid_grant", "no cookie");
    expectError(t, await ctx.refresh(ctx.secrets.token(unknownCookie())), 401, "invalid_grant", "a cookie never issued");
  }),

  check(
    "refresh.refusal-keeps-cookie",
    "a refused refresh does not clear the cookie (another tab may just have stored a newer one)",
    async (t, ctx) => {
      const answer = await ctx.refresh(ctx.secrets.token(unknownCookie()));
      const cleared = answer.cookies(ctx.backend.cookieName);
      t.expect("401 answer", "no Set-Cookie for the refresh cookie", cleared.length ? `${cleared.length} Set-Cookie` : "none", cleared.length === 0);
    },
    { level: "recommended" },
  ),

  check("refresh.concurrent-one-cookie", "two tabs refreshing with one cookie at once both succeed and end on one cookie", async (t, ctx) => {
    const session = await ctx.login();
    const [a, b] = await Promise.all([ctx.refresh(session.cookie), ctx.refresh(session.cookie)]);
    expectStatus(t, a, 200, "first of two concurrent refreshes");
    expectStatus(t, b, 200, "second of two concurrent refreshes");
    const ca = ctx.cookieOf(a);
    const cb = ctx.cookieOf(b);
    if (!t.expect("cookies set", "one each", `${ca ? 1 : 0} and ${cb ? 1 : 0}`, ca && cb)) return;
    t.expect(
      "the two new cookies",
      "the same value (the jar ends on the current cookie whichever response the browser stores last)",
      ca === cb ? "the same value" : `different values ${ctx.secrets.scrub(ca)} and ${ctx.secrets.scrub(cb)}`,
      ca === cb,
    );
    // The cookie a jar holds after both answers (equal, or the check already failed).
    await ctx.refreshOk(t, cb, "refresh with the cookie they set");
  }),

  check("refresh.grace-replay", "a rotated cookie replayed inside the grace window yields the current cookie, and rotates nothing", async (t, ctx) => {
    const first = await ctx.login();
    const sentAt = Date.now();
    const rotated = await ctx.refreshOk(t, first.cookie, "refresh");
    if (!rotated) return;
    const replay = await ctx.refresh(first.cookie);
    const elapsed = (Date.now() - sentAt) / 1000;
    if (elapsed >= ctx.config.graceSeconds && replay.status !== 200) {
      t.skip(`the replay came ${elapsed.toFixed(1)} s after the rotation, not inside the ${ctx.config.graceSeconds} s grace window (a loaded machine?)`);
    }
    expectStatus(t, replay, 200, `replay of the rotated cookie ${elapsed.toFixed(1)} s later (grace ${ctx.config.graceSeconds} s)`);
    const replayed = ctx.cookieOf(replay);
    t.expect(
      "cookie of the replay",
      "the current cookie, the one the refresh set (a new one would leave the jar on a rotated cookie)",
      !replayed ? "none" : replayed === rotated.cookie ? "the current cookie" : replayed === first.cookie ? "the rotated cookie again" : "another new cookie",
      replayed === rotated.cookie,
    );
    await ctx.refreshOk(t, rotated.cookie, "refresh with the current cookie afterwards");
  }),

  check("csrf.refresh-requires-header", "a refresh without X-Requested-With is refused and changes nothing", async (t, ctx) => {
    const session = await ctx.login();
    expectError(t, await ctx.refresh(session.cookie, { headers: { "x-requested-with": undefined } }), 400, "invalid_request", "no X-Requested-With");
    await ctx.refreshOk(t, session.cookie, "a proper refresh with the same cookie afterwards");
  }),

  check("csrf.refresh-refuses-cross-site", "a refresh marked Sec-Fetch-Site: cross-site is refused", async (t, ctx) => {
    const session = await ctx.login();
    expectError(t, await ctx.refresh(session.cookie, { headers: { "sec-fetch-site": "cross-site" } }), 403, "forbidden_origin", "Sec-Fetch-Site: cross-site");
    await ctx.refreshOk(t, session.cookie, "a proper refresh with the same cookie afterwards");
  }),

  check("csrf.refresh-refuses-foreign-origin", "a refresh from a foreign Origin (or Origin: null) is refused", async (t, ctx) => {
    const session = await ctx.login();
    const foreign = ctx.config.foreignOrigin;
    expectError(t, await ctx.refresh(session.cookie, { origin: foreign }), 403, "forbidden_origin", `Origin: ${foreign}`);
    expectError(t, await ctx.refresh(session.cookie, { origin: "null" }), 403, "forbidden_origin", "Origin: null");
    await ctx.refreshOk(t, session.cookie, "a proper refresh with the same cookie afterwards");
  }),

  check("csrf.refresh-requires-json", "a refresh with a form content type is refused", async (t, ctx) => {
    const session = await ctx.login();
    expectError(t, await ctx.refresh(session.cookie, { body: "{}", headers: { "content-type": "text/plain" } }), 415, "invalid_request", "Content-Type: text/plain");
    expectError(
      t,
      await ctx.refresh(session.cookie, { body: "a=b", headers: { "content-type": "application/x-www-form-urlencoded" } }),
      415,
      "invalid_request",
      "Content-Type: application/x-www-form-urlencoded",
    );
    await ctx.refreshOk(t, session.cookie, "a proper refresh with the same cookie afterwards");
  }),

  check("csrf.logout-refusals", "logout refuses a missing CSRF header, cross-site and foreign-origin requests, and the session survives", async (t, ctx) => {
    const session = await ctx.login();
    expectError(t, await ctx.logout(session.cookie, { headers: { "x-requested-with": undefined } }), 400, "invalid_request", "no X-Requested-With");
    expectError(t, await ctx.logout(session.cookie, { headers: { "sec-fetch-site": "cross-site" } }), 403, "forbidden_origin", "Sec-Fetch-Site: cross-site");
    expectError(t, await ctx.logout(session.cookie, { origin: ctx.config.foreignOrigin }), 403, "forbidden_origin", `Origin: ${ctx.config.foreignOrigin}`);
    await ctx.refreshOk(t, session.cookie, "a refresh with the same cookie afterwards");
  }),

  check("cors.preflight-allowed-origin", "preflights from the SPA's origin are allowed with credentials and the headers the package sends", async (t, ctx) => {
    ctx.needsCrossOrigin();
    const origin = ctx.config.origin;
    const cases = [
      [ctx.paths.refresh, "POST", "content-type, x-requested-with"],
      [ctx.paths.resource, "GET", "authorization"],
    ];
    for (const [path, method, requested] of cases) {
      const answer = await ctx.backend.request("OPTIONS", path, {
        headers: { "access-control-request-method": method, "access-control-request-headers": requested },
      });
      const allowOrigin = answer.header("access-control-allow-origin");
      const allowHeaders = answer.header("access-control-allow-headers");
      const missing = requested.split(", ").filter((h) => !listIncludes(allowHeaders, h));
      const methodOk = ["GET", "POST"].includes(method) || listIncludes(answer.header("access-control-allow-methods"), method);
      t.expect(
        `OPTIONS ${path} (${method}, ${requested})`,
        `2xx, Allow-Origin ${origin}, Allow-Credentials true, Allow-Headers with ${requested}`,
        `${answer.status}, Allow-Origin ${allowOrigin ?? "none"}, Allow-Credentials ${answer.header("access-control-allow-credentials") ?? "none"}, Allow-Headers ${allowHeaders ?? "none"}`,
        answer.status >= 200 && answer.status < 300 && allowOrigin === origin && answer.header("access-control-allow-credentials") === "true" && missing.length === 0 && methodOk,
      );
    }
  }),

  check("cors.preflight-foreign-origin", "preflights from a foreign origin get no CORS permission", async (t, ctx) => {
    const foreign = ctx.config.foreignOrigin;
    for (const path of [ctx.paths.refresh, ctx.paths.login]) {
      const answer = await ctx.backend.request("OPTIONS", path, {
        origin: foreign,
        headers: { "access-control-request-method": "POST", "access-control-request-headers": "content-type, x-requested-with" },
      });
      const allowOrigin = answer.header("access-control-allow-origin");
      const credentials = answer.header("access-control-allow-credentials");
      t.expect(
        `OPTIONS ${path} from ${foreign}`,
        "no Access-Control-Allow-Origin for it (nor *), no Allow-Credentials",
        `${answer.status}, Allow-Origin ${allowOrigin ?? "none"}, Allow-Credentials ${credentials ?? "none"}`,
        (allowOrigin === null || (allowOrigin !== foreign && allowOrigin !== "*")) && credentials !== "true",
      );
    }
  }),

  check("cors.credentialed-responses", "answers to the SPA's origin allow credentials and expose Retry-After", async (t, ctx) => {
    ctx.needsCrossOrigin();
    const origin = ctx.config.origin;
    const session = await ctx.login();
    const answers = [session.answer, await ctx.refresh(session.cookie), await ctx.refresh(ctx.secrets.token(unknownCookie()))];
    for (const answer of answers) {
      const allowOrigin = answer.header("access-control-allow-origin");
      const expose = answer.header("access-control-expose-headers");
      t.expect(
        answer.label,
        `Allow-Origin ${origin}, Allow-Credentials true, Expose-Headers with Retry-After`,
        `Allow-Origin ${allowOrigin ?? "none"}, Allow-Credentials ${answer.header("access-control-allow-credentials") ?? "none"}, Expose-Headers ${expose ?? "none"}`,
        allowOrigin === origin && answer.header("access-control-allow-credentials") === "true" && listIncludes(expose, "retry-after"),
      );
    }
  }),

  check(
    "cors.expose-www-authenticate",
    "the resource endpoint's 401 exposes WWW-Authenticate to the SPA's origin",
    async (t, ctx) => {
      ctx.needsCrossOrigin();
      const answer = await ctx.resource(undefined);
      const expose = answer.header("access-control-expose-headers");
      t.expect(answer.label, "Expose-Headers with WWW-Authenticate", expose ?? "none", listIncludes(expose, "www-authenticate"));
    },
    { level: "recommended" },
  ),

  check(
    "cors.vary-origin",
    "answers that depend on Origin say Vary: Origin",
    async (t, ctx) => {
      ctx.needsCrossOrigin();
      const answer = await ctx.resource(undefined);
      const vary = answer.headers.get("vary");
      t.expect(answer.label, "Vary: Origin", vary ?? "none", listIncludes(vary, "origin") || vary === "*");
    },
    { level: "recommended" },
  ),

  check("logout.revokes-session", "logout answers 204, clears the cookie, revokes the family and denies the access token", async (t, ctx) => {
    const session = await ctx.login();
    if (!expectStatus(t, await ctx.resource(session.token), 200, "the access token before logout")) return;
    const answer = await ctx.logout(session.cookie, { bearer: session.token });
    expectStatus(t, answer, 204, `${answer.method} ${answer.path}`);
    const clear = answer.cookies(ctx.backend.cookieName);
    const c = clear[0];
    const maxAge = c?.attributes.get("max-age");
    const expires = c?.attributes.get("expires");
    const cleared = c && !c.value && (maxAge === "0" || (typeof expires === "string" && Date.parse(expires) < Date.now()));
    const sameScope = c && c.attributes.has("secure") && c.attributes.get("path") === "/" && !c.attributes.has("domain");
    t.expect(
      "Set-Cookie",
      `${ctx.backend.cookieName}=; Max-Age=0 (or a past Expires); Secure; Path=/; no Domain`,
      c ? `${c.name}=${c.value ? ctx.secrets.scrub(c.value) : ""}; ${[...c.attributes.entries()].map(([k, v]) => (v === true ? k : `${k}=${v}`)).join("; ")}` : "none",
      clear.length === 1 && cleared && sameScope,
    );
    expectError(t, await ctx.refresh(session.cookie), 401, "invalid_grant", "refresh with the logged-out cookie");
    const denied = await ctx.resource(session.token);
    expectError(t, denied, 401, "invalid_token", "the access token after logout");
    t.expect("WWW-Authenticate of that 401", 'Bearer error="invalid_token"', denied.header("www-authenticate") ?? "none", /^bearer\b.*error="invalid_token"/i.test(denied.header("www-authenticate") ?? ""));
  }),

  check(
    "logout.without-cookie",
    "logout is idempotent: without a cookie it still answers 204",
    async (t, ctx) => {
      expectStatus(t, await ctx.logout(undefined), 204, "logout without a cookie");
    },
    { level: "recommended" },
  ),

  check("retry-after.429", "a 429 from the refresh endpoint carries Retry-After and rate_limited, and revokes nothing", async (t, ctx) => {
    ctx.needsSwitches();
    const session = await ctx.login();
    await ctx.failNextRefresh({ count: 1, status: 429, retry_after: 2 });
    try {
      const answer = await ctx.refresh(session.cookie);
      expectError(t, answer, 429, "rate_limited");
      const retryAfter = answer.header("retry-after");
      t.expect("Retry-After", "delay-seconds or an HTTP date", retryAfter ?? "none", /^\d+$/.test(retryAfter ?? "") || !Number.isNaN(Date.parse(retryAfter ?? "")));
    } finally {
      await ctx.failNextRefresh({ count: 0, status: 429 }).catch(() => {});
    }
    await ctx.refreshOk(t, session.cookie, "a refresh with the same cookie afterwards");
  }),

  check("retry-after.503", "a 503 from the refresh endpoint carries Retry-After and temporarily_unavailable, and revokes nothing", async (t, ctx) => {
    ctx.needsSwitches();
    const session = await ctx.login();
    await ctx.failNextRefresh({ count: 1, status: 503, retry_after: 2 });
    try {
      const answer = await ctx.refresh(session.cookie);
      expectError(t, answer, 503, "temporarily_unavailable");
      const retryAfter = answer.header("retry-after");
      t.expect("Retry-After", "delay-seconds or an HTTP date", retryAfter ?? "none", /^\d+$/.test(retryAfter ?? "") || !Number.isNaN(Date.parse(retryAfter ?? "")));
    } finally {
      await ctx.failNextRefresh({ count: 0, status: 503 }).catch(() => {});
    }
    await ctx.refreshOk(t, session.cookie, "a refresh with the same cookie afterwards");
  }),

  check(
    "refresh.reuse-revokes-family",
    "a rotated cookie replayed after the grace window is refused and revokes the family",
    async (t, ctx, prepared) => {
      const replay = await replayAfterGrace(ctx, prepared);
      expectError(t, replay, 401, "invalid_grant", `replay of the rotated cookie ${((Date.now() - prepared.rotatedBy) / 1000).toFixed(1)} s after the rotation was answered (grace ${ctx.config.graceSeconds} s)`);
      expectError(t, await ctx.refresh(prepared.second), 401, "invalid_grant", "the family's current cookie afterwards");
    },
    { prepare: rotatedFamily },
  ),

  check(
    "refresh.reuse-ends-access-tokens",
    "after a detected replay the family's access tokens are refused too",
    async (t, ctx, prepared) => {
      if (!expectStatus(t, await ctx.resource(prepared.secondToken), 200, "the newest access token before the replay")) return;
      const replay = await replayAfterGrace(ctx, prepared);
      if (!expectError(t, replay, 401, "invalid_grant", "replay after the grace window")) return;
      expectError(t, await ctx.resource(prepared.secondToken), 401, "invalid_token", "the newest access token after it");
    },
    { level: "recommended", prepare: rotatedFamily },
  ),

  // Refused logins last: a login throttle they may set off cannot slow the checks that sign in.
  check("login.requires-json", "login refuses the content types an HTML form can send", async (t, ctx) => {
    const { username, password } = ctx.credentials;
    const plain = await ctx.backend.request("POST", ctx.paths.login, {
      body: JSON.stringify({ username, password }),
      headers: { ...AUTH_HEADERS, "content-type": "text/plain" },
    });
    expectError(t, plain, 415, "invalid_request", "Content-Type: text/plain");
    const form = await ctx.backend.request("POST", ctx.paths.login, {
      body: new URLSearchParams({ username, password }).toString(),
      headers: { ...AUTH_HEADERS, "content-type": "application/x-www-form-urlencoded" },
    });
    expectError(t, form, 415, "invalid_request", "Content-Type: application/x-www-form-urlencoded");
  }),

  check("login.foreign-origin", "login refuses a foreign Origin", async (t, ctx) => {
    const { username, password } = ctx.credentials;
    const answer = await ctx.backend.request("POST", ctx.paths.login, {
      origin: ctx.config.foreignOrigin,
      json: { username, password },
      headers: AUTH_HEADERS,
    });
    expectError(t, answer, 403, "forbidden_origin", `Origin: ${ctx.config.foreignOrigin}`);
    t.expect("Set-Cookie", "no refresh cookie", ctx.cookieOf(answer) ? "a refresh cookie" : "none", !ctx.cookieOf(answer));
  }),

  check("login.wrong-password", "a wrong password is refused with invalid_credentials and no cookie", async (t, ctx) => {
    const answer = await ctx.backend.request("POST", ctx.paths.login, {
      json: { username: ctx.credentials.username, password: `not-the-password-${randomBytes(6).toString("hex")}` },
      headers: AUTH_HEADERS,
    });
    expectError(t, answer, 401, "invalid_credentials");
    const set = answer.cookies(ctx.backend.cookieName).filter((c) => c.value);
    t.expect("Set-Cookie", "no refresh cookie", set.length ? "a refresh cookie" : "none", set.length === 0);
  }),

  check("login.unknown-user", "an unknown user gets the same answer as a wrong password", async (t, ctx) => {
    const answer = await ctx.backend.request("POST", ctx.paths.login, {
      json: { username: `conformance-no-such-user-${randomBytes(6).toString("hex")}`, password: "not-a-password" },
      headers: AUTH_HEADERS,
    });
    expectError(t, answer, 401, "invalid_credentials");
  }),

  check("errors.body-shape", 'every error answer of the run was {"error","error_description"} with a documented code', async (t, ctx) => {
    const errors = ctx.backend.errors.filter((a) => !a.path.endsWith(`/${ctx.config.paths.failRefresh}`));
    if (errors.length === 0) t.skip("the run met no error answer");
    for (const answer of errors) {
      // Preflight refusals need no body: the browser reads none of it.
      if (answer.method === "OPTIONS") continue;
      const problem = errorBodyProblem(answer);
      t.expect(answer.label, 'JSON {"error": documented code, "error_description": string}', problem ?? describe(answer), !problem);
    }
  }),

  check(
    "errors.no-store",
    "every error answer of the run said Cache-Control: no-store",
    async (t, ctx) => {
      const errors = ctx.backend.errors.filter((a) => a.method !== "OPTIONS" && !a.path.endsWith(`/${ctx.config.paths.failRefresh}`));
      if (errors.length === 0) t.skip("the run met no error answer");
      const stored = errors.filter((a) => !hasNoStore(a));
      t.expect(
        `Cache-Control of ${errors.length} error answers`,
        "no-store",
        stored.length ? `missing on ${[...new Set(stored.map((a) => a.label))].join(", ")}` : "no-store on all",
        stored.length === 0,
      );
    },
    { level: "recommended" },
  ),
];
