// A fake DPoP-aware auth server installed as the page's global `fetch` (tests/dpop.rs), and
// an independent checker of the proofs the package makes: WebCrypto verifies each against the
// `jwk` of its own header, and every member of the wire contract is compared.

const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const b64urlText = (s) => b64url(new TextEncoder().encode(s));
const unb64url = (s) => {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
};
const decodeJson = (s) => JSON.parse(new TextDecoder().decode(unb64url(s)));

/** The payload of a compact proof (no checks), or null. */
export function proofPayload(proof) {
  try {
    return decodeJson(proof.split(".")[1]);
  } catch {
    return null;
  }
}

/** RFC 7638 thumbprint of a P-256 public JWK. */
export async function thumbprint(jwk) {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)));
}

/**
 * Checks a proof against the contract; resolves to the list of what is wrong (empty: valid).
 * `token`: the access token it must carry the `ath` of (resource requests), else none.
 */
export async function checkProof(proof, { htm, htu, token = null, nonce = null, clockSkew = 0 }) {
  const problems = [];
  if (typeof proof !== "string") return ["no DPoP header"];
  const parts = proof.split(".");
  if (parts.length !== 3) return ["not a compact JWS"];
  const header = decodeJson(parts[0]);
  const payload = decodeJson(parts[1]);
  if (header.typ !== "dpop+jwt") problems.push(`typ ${header.typ}`);
  if (header.alg !== "ES256") problems.push(`alg ${header.alg}`);
  const jwk = header.jwk ?? {};
  if (JSON.stringify(Object.keys(jwk).sort()) !== JSON.stringify(["crv", "kty", "x", "y"])) {
    problems.push(`jwk members ${Object.keys(jwk)}`);
  }
  if (jwk.kty !== "EC" || jwk.crv !== "P-256") problems.push("jwk is not a P-256 key");
  try {
    const key = await crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, unb64url(parts[2]), new TextEncoder().encode(`${parts[0]}.${parts[1]}`));
    if (!ok) problems.push("signature does not verify");
  } catch (e) {
    problems.push(`key or signature unusable: ${e}`);
  }
  if (payload.htm !== htm) problems.push(`htm ${payload.htm}`);
  if (payload.htu !== htu) problems.push(`htu ${payload.htu}`);
  if (typeof payload.jti !== "string" || payload.jti.length < 22) problems.push(`jti ${payload.jti}`);
  if (!Number.isInteger(payload.iat) || Math.abs(payload.iat - (Date.now() / 1000 + clockSkew)) > 5) problems.push(`iat ${payload.iat}`);
  if (token === null) {
    if ("ath" in payload) problems.push("ath on a token request");
  } else {
    const ath = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
    if (payload.ath !== ath) problems.push(`ath ${payload.ath}`);
  }
  if ((payload.nonce ?? null) !== nonce) problems.push(`nonce ${payload.nonce}`);
  return problems;
}

/** Resolves with the `dpop` member of the next token announcement on `channelName`. */
export function nextAnnouncedKey(channelName) {
  const channel = new BroadcastChannel(channelName);
  return new Promise((resolve) => {
    channel.onmessage = (e) => {
      if (e.data?.type === "token") {
        channel.close();
        resolve(e.data.dpop ?? null);
      }
    };
  });
}

/** Whether every `exportKey` format refuses the key. */
export async function exportRefused(key) {
  for (const format of ["jwk", "pkcs8", "raw"]) {
    try {
      await crypto.subtle.exportKey(format, key);
      return false;
    } catch {
      // refused, as it must be
    }
  }
  return true;
}

export class DpopServer {
  /**
   * `tokenType`: what the token endpoints answer (`"DPoP"`, or `"Bearer"` for a server without
   * DPoP). `nonce`: when set, a proof without the current nonce is refused with
   * `use_dpop_nonce` (400 on the token endpoints, 401 on the API).
   */
  constructor(lifetimeSeconds, { tokenType = "DPoP", nonce = null, clockSkew = 0 } = {}) {
    this.clockSkew = clockSkew; // seconds the server's clock (its `Date` header, `iat`) is ahead
    this.lifetime = lifetimeSeconds;
    this.tokenType = tokenType;
    this.nonce = nonce;
    this.requests = [];
    this.tokens = [];
    this.refreshReplies = [];
    this.rotateEveryRequest = false;
    this.install();
  }

  install() {
    this.realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => this.handle(new Request(input, init));
  }

  uninstall() { globalThis.fetch = this.realFetch; }
  requestsTo(path) { return this.requests.filter((r) => new URL(r.url).pathname === path); }
  latestToken() { return this.tokens[this.tokens.length - 1] ?? null; }
  pushRefreshReply(reply) { this.refreshReplies.push(reply); }

  async mint(proof) {
    const iat = Math.floor(Date.now() / 1000 + this.clockSkew);
    const header = b64urlText(JSON.stringify({ alg: "ES256", typ: "at+jwt", kid: "test" }));
    const claims = { iss: "https://issuer.test", sub: "user-1", sid: "session-1", aud: "api", iat, exp: iat + this.lifetime, jti: `t${this.tokens.length + 1}` };
    if (this.tokenType === "DPoP") claims.cnf = { jkt: await thumbprint(decodeJson(proof.split(".")[0]).jwk) };
    const token = `${header}.${b64urlText(JSON.stringify(claims))}.${b64urlText("sig" + this.tokens.length)}`;
    this.tokens.push(token);
    return token;
  }

  nonceHeaders() {
    const date = { Date: new Date(Date.now() + this.clockSkew * 1000).toUTCString() };
    return this.nonce ? { "DPoP-Nonce": this.nonce, ...date } : date;
  }

  async handle(request) {
    const url = new URL(request.url);
    const proof = request.headers.get("DPoP");
    this.requests.push({ url: request.url, method: request.method, proof, authorization: request.headers.get("Authorization") });
    // A new nonce for every request: every proof is stale.
    if (this.rotateEveryRequest) this.nonce = `rot-${this.requests.length}`;
    const nonceMissing = this.nonce && proofPayload(proof ?? "")?.nonce !== this.nonce;
    switch (url.pathname) {
      case "/auth/login":
      case "/auth/refresh": {
        if (nonceMissing) {
          return new Response(JSON.stringify({ error: "use_dpop_nonce", error_description: "nonce required" }), {
            status: 400, headers: { "Content-Type": "application/json", ...this.nonceHeaders() },
          });
        }
        const reply = url.pathname === "/auth/refresh" ? this.refreshReplies.shift() : undefined;
        if (reply === "bad-proof") {
          return new Response(JSON.stringify({ error: "invalid_dpop_proof", error_description: "stale iat" }), {
            status: 400, headers: { "Content-Type": "application/json" },
          });
        }
        const body = { access_token: await this.mint(proof), token_type: this.tokenType, expires_in: this.lifetime };
        return new Response(JSON.stringify(body), {
          status: 200, headers: { "Content-Type": "application/json", "Cache-Control": "no-store", ...this.nonceHeaders() },
        });
      }
      case "/auth/logout":
        return new Response(null, { status: 204 });
      default:
        if (nonceMissing) {
          return new Response(JSON.stringify({ error: "use_dpop_nonce" }), {
            status: 401, headers: { "WWW-Authenticate": 'DPoP error="use_dpop_nonce", algs="ES256"', ...this.nonceHeaders() },
          });
        }
        return new Response(JSON.stringify({ ok: true }), { status: 200, headers: this.nonceHeaders() });
    }
  }
}
