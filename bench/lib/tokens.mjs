// Test tokens, made fresh for each run with jose in Node: pools of distinct tokens of the same
// size (only `jti` differs), so no contestant can profit from caching the last answer.
import { randomBytes } from "node:crypto";
import { SignJWT, exportJWK, generateKeyPair, calculateJwkThumbprint } from "jose";

const POOL = 32;

function jti() {
  return randomBytes(12).toString("base64url"); // 16 characters, so every token has one length
}

/** Pads `claims[field]` until the compact token is `bytes` long (± the base64 granularity). */
async function sizedPool(bytes, claims, field, sign) {
  const unpadded = await sign({ ...claims, jti: jti() });
  const pad = Math.max(0, Math.floor(((bytes - unpadded.length) * 3) / 4));
  const padded = { ...claims, [field]: claims[field] + "x".repeat(pad) };
  const pool = [];
  for (let i = 0; i < POOL; i++) pool.push(await sign({ ...padded, jti: jti() }));
  return pool;
}

/**
 * Decode inputs: `small`, a ~300-byte HS256 token with the 7 registered claims and a name
 * (what a minimal API token carries); `large`, a ~1.2 KB RS256 `at+jwt` with 15 claims
 * (an OIDC-style access token with profile, roles, scopes and a nested object).
 */
export async function decodeTokens() {
  const now = Math.floor(Date.now() / 1000);
  const secret = randomBytes(32);
  const small = await sizedPool(
    300,
    { iss: "https://auth.example.com", sub: "user-1234", aud: "api", exp: now + 3600, nbf: now, iat: now, name: "Ada Lovelace" },
    "name",
    (c) => new SignJWT(c).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(secret),
  );
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  const large = await sizedPool(
    1200,
    {
      iss: "https://auth.example.com/realms/main",
      sub: "8c1a4e7e-2f0b-4d8e-9a55-0c3f1b2d6e71",
      aud: ["https://api.example.com", "https://files.example.com"],
      exp: now + 900, nbf: now, iat: now,
      azp: "spa-client",
      sid: "b7f3c2a1-9e4d-4c8b-a1f0-5d6e7f8a9b0c",
      scope: "openid profile email api:read api:write",
      name: "Ada Lovelace",
      email: "ada.lovelace@example.com",
      email_verified: true,
      roles: ["user", "editor", "billing-admin"],
      org: { id: "org_42", name: "Analytical Engines Ltd", plan: "enterprise", region: "eu-west-1" },
    },
    "name",
    (c) => new SignJWT(c).setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid }).sign(privateKey),
  );
  return { small, large };
}

/** The claim count of a compact token (for the report). */
export function claimCount(token) {
  return Object.keys(JSON.parse(Buffer.from(token.split(".")[1], "base64url"))).length;
}

/**
 * Verify inputs for RS256 (2048-bit), ES256 (P-256) and EdDSA (Ed25519): a JWKS with the
 * public key, a pool of tokens shaped like the reference server's (`at+jwt`, kid, iss, sub,
 * aud, exp, nbf, iat, jti, sid, name, roles), and the policy both sides check.
 */
export async function verifyFixtures() {
  const nowMs = Date.now();
  const now = Math.floor(nowMs / 1000);
  const issuer = "https://auth.example.com";
  const audience = "wasm-token-manager-demo";
  const out = {};
  for (const alg of ["RS256", "ES256", "EdDSA"]) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, crv: alg === "EdDSA" ? "Ed25519" : undefined });
    const jwk = await exportJWK(publicKey);
    jwk.kid = await calculateJwkThumbprint(jwk);
    jwk.alg = alg;
    jwk.use = "sig";
    const tokens = [];
    for (let i = 0; i < POOL; i++) {
      tokens.push(
        await new SignJWT({ sid: "3q2-7w", name: "Ada Lovelace", roles: ["user"] })
          .setProtectedHeader({ alg, typ: "at+jwt", kid: jwk.kid })
          .setIssuer(issuer).setSubject("demo").setAudience(audience)
          .setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 86_400).setJti(jti())
          .sign(privateKey),
      );
    }
    out[alg] = { jwks: { keys: [jwk] }, tokens };
  }
  return { issuer, audience, currentTime: nowMs, byAlg: out };
}
