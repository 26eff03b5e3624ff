// Test-side JOSE: key generation and signing with WebCrypto, so the verification tests build
// every token themselves (valid ones and attacks) instead of trusting a library's output.

const enc = new TextEncoder();
const b64url = (bytes) => {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};
export const b64urlText = (text) => b64url(enc.encode(text));

const PARAMS = {
  RS256: { gen: { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, sign: { name: "RSASSA-PKCS1-v1_5" } },
  PS256: { gen: { name: "RSA-PSS", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, sign: { name: "RSA-PSS", saltLength: 32 } },
  ES256: { gen: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" } },
  ES384: { gen: { name: "ECDSA", namedCurve: "P-384" }, sign: { name: "ECDSA", hash: "SHA-384" } },
  EdDSA: { gen: { name: "Ed25519" }, sign: { name: "Ed25519" } },
};

/** A key pair for `alg`: `{ alg, privateKey, jwk }`, jwk being the public JWK with kid and alg. */
export async function generateKey(alg, kid) {
  const p = PARAMS[alg];
  const pair = await crypto.subtle.generateKey(p.gen, true, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  delete jwk.key_ops;
  delete jwk.ext;
  return { alg, privateKey: pair.privateKey, jwk: { ...jwk, kid, alg, use: "sig" } };
}

/** An RSA key pair for `alg` (RS256 or PS256) with a modulus of `bits` bits, as generateKey. */
export async function generateRsaKey(alg, kid, bits) {
  const gen = { ...PARAMS[alg].gen, modulusLength: bits };
  const pair = await crypto.subtle.generateKey(gen, true, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  delete jwk.key_ops;
  delete jwk.ext;
  return { alg, privateKey: pair.privateKey, jwk: { ...jwk, kid, alg, use: "sig" } };
}

/** Signs header and claims (objects, or strings used verbatim) with the key's algorithm. */
export async function sign(key, header, claims) {
  const h = typeof header === "string" ? header : JSON.stringify(header);
  const c = typeof claims === "string" ? claims : JSON.stringify(claims);
  const input = `${b64urlText(h)}.${b64urlText(c)}`;
  const sig = await crypto.subtle.sign(PARAMS[key.alg].sign, key.privateKey, enc.encode(input));
  return `${input}.${b64url(sig)}`;
}

/** HMAC-signs with raw bytes as the secret (the "public key as HS256 secret" attack). */
export async function signHmac(secretText, header, claims) {
  const key = await crypto.subtle.importKey("raw", enc.encode(secretText), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const input = `${b64urlText(JSON.stringify(header))}.${b64urlText(JSON.stringify(claims))}`;
  const sig = await crypto.subtle.sign("HMAC", key, enc.encode(input));
  return `${input}.${b64url(sig)}`;
}

export function errorCode(e) { return e && e.code; }

export const b64urlBytes = (bytes) => b64url(bytes);

/** Imports a fixture key pair (tests/fixtures/keys.json entry) as `{ alg, privateKey, jwk }`. */
export async function importFixture(entry) {
  const p = PARAMS[entry.alg];
  const importParams = entry.alg.startsWith("ES") ? p.gen : { name: p.gen.name, hash: p.gen.hash };
  const privateKey = await crypto.subtle.importKey("jwk", entry.private_jwk, importParams, false, ["sign"]);
  return { alg: entry.alg, privateKey, jwk: entry.public_jwk };
}

/** Signs the exact segment texts `header.claims` (already encoded, any shape) with the key. */
export async function signSegments(key, headerSegment, claimsSegment) {
  const input = `${headerSegment}.${claimsSegment}`;
  const sig = await crypto.subtle.sign(PARAMS[key.alg].sign, key.privateKey, enc.encode(input));
  return `${input}.${b64url(sig)}`;
}

/** HMAC-signs exact segment texts with raw bytes (a Uint8Array) as the secret. */
export async function signHmacSegments(secretBytes, headerSegment, claimsSegment) {
  const key = await crypto.subtle.importKey("raw", secretBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const input = `${headerSegment}.${claimsSegment}`;
  const sig = await crypto.subtle.sign("HMAC", key, enc.encode(input));
  return `${input}.${b64url(sig)}`;
}

/** Announces `token` on the manager's BroadcastChannel, as a sibling tab (or an attacker with script access to the origin) would. */
export function announce(channelName, token, lifetimeMs) {
  const channel = new BroadcastChannel(channelName);
  channel.postMessage({ v: 1, type: "token", token, receivedAt: Date.now(), lifetimeMs });
  channel.close();
}

/**
 * A fake issuer installed as the page's `fetch`: login and refresh hand out the queued tokens
 * (or, when the queue is empty, a fresh valid token signed with `key`), the JWKS endpoint
 * counts its requests and can be made to fail, and the API answers 401 while `api401` > 0.
 */
export class SigningServer {
  constructor(key, lifetimeSeconds) {
    this.key = key;
    this.lifetime = lifetimeSeconds;
    this.jwks = { keys: [key.jwk] };
    this.jwksFail = false;
    this.jwksRequests = 0;
    this.queue = [];
    this.issued = [];
    this.api401 = 0;
    this.apiAuthorizations = [];
    this.minted = 0;
    this.install();
  }

  /** Replaces the page's `fetch` (the constructor does; the Rust test guard may do it again). */
  install() {
    this.realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => this.handle(new Request(input, init));
  }

  uninstall() { globalThis.fetch = this.realFetch; }
  push(token) { this.queue.push(token); }
  addKey(jwk) { this.jwks.keys.push(jwk); }
  lastApiAuthorization() { return this.apiAuthorizations[this.apiAuthorizations.length - 1] ?? null; }
  lastIssued() { return this.issued[this.issued.length - 1] ?? null; }

  async mint() {
    this.minted += 1;
    const iat = Math.floor(Date.now() / 1000);
    return sign(this.key, { alg: this.key.alg, kid: this.key.jwk.kid, typ: "at+jwt" }, {
      iss: "https://issuer.test", aud: "api", sub: "user-1", iat, nbf: iat, exp: iat + this.lifetime,
      jti: `m${this.minted}`, name: "Ada Lovelace",
    });
  }

  async tokenResponse() {
    const token = this.queue.length ? this.queue.shift() : await this.mint();
    this.issued.push(token);
    return new Response(JSON.stringify({ access_token: token, token_type: "Bearer", expires_in: this.lifetime }), {
      status: 200, headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
    });
  }

  async handle(request) {
    const url = new URL(request.url);
    if (url.origin !== location.origin) return new Response("foreign", { status: 200 });
    switch (url.pathname) {
      case "/auth/login":
        return this.tokenResponse();
      case "/auth/refresh":
        if (request.headers.get("X-Requested-With") !== "wasm-token-manager") return new Response("{}", { status: 400 });
        return this.tokenResponse();
      case "/auth/logout":
        return new Response(null, { status: 204 });
      case "/.well-known/jwks.json":
        this.jwksRequests += 1;
        if (this.jwksFail) return new Response(JSON.stringify({ error: "server_error" }), { status: 503 });
        return new Response(JSON.stringify(this.jwks), { status: 200, headers: { "Content-Type": "application/json" } });
      default: {
        this.apiAuthorizations.push(request.headers.get("Authorization"));
        if (this.api401 > 0) {
          this.api401 -= 1;
          return new Response(JSON.stringify({ error: "invalid_token" }), { status: 401 });
        }
        return new Response(JSON.stringify({ ok: true }), { status: 200 });
      }
    }
  }
}

/** Resolves with the detail of the next `type` event of `target`, rejects after `ms`. */
export function nextEvent(target, type, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} event within ${ms} ms`)), ms);
    const listener = (e) => { clearTimeout(timer); target.removeEventListener(type, listener); resolve(e.detail); };
    target.addEventListener(type, listener);
  });
}
