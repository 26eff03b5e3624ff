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
