// DPoP checks from Node for the e2e specs: a proof the page sent, verified with Node's own
// crypto against the `jwk` of its header (an implementation independent of the package's
// WebCrypto code), and proofs of another key, made here, for the stolen-token test.

import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from "node:crypto";

const b64 = (bytes) => Buffer.from(bytes).toString("base64url");
const json = (segment) => JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));

/** base64url SHA-256 of the token: the `ath` a proof for it carries. */
export const ath = (token) => b64(createHash("sha256").update(token, "ascii").digest());

/**
 * What is wrong with `proof` for `htm htu` (with the `ath` of `token` when given); empty
 * when it is valid. Also returns its header and payload.
 */
export function checkProof(proof, { htm, htu, token = null }) {
  const problems = [];
  const parts = String(proof ?? "").split(".");
  if (parts.length !== 3) return { problems: ["no compact proof"] };
  const header = json(parts[0]);
  const payload = json(parts[1]);
  if (header.typ !== "dpop+jwt") problems.push(`typ ${header.typ}`);
  if (header.alg !== "ES256") problems.push(`alg ${header.alg}`);
  const members = Object.keys(header.jwk ?? {}).sort().join(",");
  if (members !== "crv,kty,x,y") problems.push(`jwk members ${members}`);
  const key = createPublicKey({ key: header.jwk, format: "jwk" });
  const ok = verify("sha256", Buffer.from(`${parts[0]}.${parts[1]}`), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(parts[2], "base64url"));
  if (!ok) problems.push("signature does not verify");
  if (payload.htm !== htm) problems.push(`htm ${payload.htm}`);
  if (payload.htu !== htu) problems.push(`htu ${payload.htu}`);
  if (typeof payload.jti !== "string" || payload.jti.length < 22) problems.push(`jti ${payload.jti}`);
  if (token === null ? "ath" in payload : payload.ath !== ath(token)) problems.push(`ath ${payload.ath}`);
  return { problems, header, payload };
}

/** RFC 7638 thumbprint of a P-256 JWK (what `cnf.jkt` holds). */
export function thumbprint(jwk) {
  return b64(createHash("sha256").update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest());
}

/** A valid proof for `htm htu` (with `ath` of `token`), signed by a key made here. */
export function proofOfAnotherKey({ htm, htu, token }) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const { kty, crv, x, y } = publicKey.export({ format: "jwk" });
  const header = b64(JSON.stringify({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } }));
  const claims = { jti: b64(randomBytes(16)), htm, htu, iat: Math.floor(Date.now() / 1000) };
  if (token) claims.ath = ath(token);
  const payload = b64(JSON.stringify(claims));
  const signature = sign("sha256", Buffer.from(`${header}.${payload}`), { key: privateKey, dsaEncoding: "ieee-p1363" });
  return `${header}.${payload}.${b64(signature)}`;
}
