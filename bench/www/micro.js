// In-page micro-benchmarks of decoding and verification. Bundled by the run (esbuild) into
// dist/micro.js; this package is loaded from /pkg/ as an app would load it. Node drives the
// rounds (bench/sections/micro.mjs) and interleaves the contestants; each call here measures
// one contestant for a fixed time and returns operations per second.
import { jwtDecode } from "jwt-decode";
import { createLocalJWKSet, decodeJwt, importJWK, jwtVerify } from "jose";
import { decodeFor, floorDecode } from "./decode-loop.js";

const IMPORT = {
  RS256: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  ES256: { name: "ECDSA", namedCurve: "P-256" },
  EdDSA: { name: "Ed25519" },
};
const VERIFY = {
  RS256: { name: "RSASSA-PKCS1-v1_5" },
  ES256: { name: "ECDSA", hash: "SHA-256" },
  EdDSA: { name: "Ed25519" },
};

const utf8 = new TextEncoder();

function base64urlBytes(s) {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

let decoders;
let verifiers;
let pools;

function tamper(token) {
  const dot = token.lastIndexOf(".");
  const i = dot + 10;
  return token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
}

async function rejects(p) {
  try {
    return (await p) === false;
  } catch {
    return true;
  }
}

/** Loads both package entries, imports keys, and checks every contestant on every input. */
async function setup({ decode, verify, baseline }) {
  const plain = await import("/pkg/wasm_token_manager.js");
  await plain.default();
  const verifying = await import("/pkg/verify/wasm_token_manager.js");
  await verifying.default();
  // `--verify-baseline`: another build's verify entry, one more contestant.
  let before;
  if (baseline) {
    before = await import(baseline);
    await before.default();
  }

  decoders = {
    decodeClaims: (t) => plain.decodeClaims(t),
    jwtDecode: (t) => jwtDecode(t),
    decodeJwt: (t) => decodeJwt(t),
    floor: floorDecode,
  };
  pools = { decode, verify: {} };
  for (const [kind, tokens] of Object.entries(decode)) {
    const want = floorDecode(tokens[0]).sub;
    for (const [name, fn] of Object.entries(decoders)) {
      if (fn(tokens[0]).sub !== want) throw new Error(`${name} decodes ${kind} wrongly`);
    }
  }

  verifiers = {};
  for (const [alg, { jwks, tokens }] of Object.entries(verify.byAlg)) {
    const { issuer, audience, currentTime } = verify;
    const ours = { jwks, algorithms: [alg], issuer, audience, currentTime };
    const joseOptions = { algorithms: [alg], issuer, audience, currentDate: new Date(currentTime) };
    const keySet = createLocalJWKSet(jwks);
    const joseKey = await importJWK(jwks.keys[0], alg);
    const subtleKey = await crypto.subtle.importKey("jwk", jwks.keys[0], IMPORT[alg], false, ["verify"]);
    verifiers[alg] = {
      verifyToken: (t) => verifying.verifyToken(t, ours),
      "jwtVerify (local JWKS)": (t) => jwtVerify(t, keySet, joseOptions),
      "jwtVerify (CryptoKey)": (t) => jwtVerify(t, joseKey, joseOptions),
      ...(before && { "verifyToken (baseline)": (t) => before.verifyToken(t, ours) }),
      "floor": (t) => {
        const dot = t.lastIndexOf(".");
        return crypto.subtle.verify(VERIFY[alg], subtleKey, base64urlBytes(t.slice(dot + 1)), utf8.encode(t.slice(0, dot)));
      },
    };
    pools.verify[alg] = tokens;
    for (const [name, fn] of Object.entries(verifiers[alg])) {
      const ok = await fn(tokens[0]);
      if (!(ok === true || ok?.payload?.sub === "demo" || ok?.sub === "demo")) throw new Error(`${name} ${alg}: valid token refused`);
      if (!(await rejects(fn(tamper(tokens[0]))))) throw new Error(`${name} ${alg}: forged signature accepted`);
    }
  }
  return { decoders: Object.keys(decoders), verifiers: Object.keys(verifiers.RS256) };
}

/** Decodes tokens of `kind` round-robin for `ms` milliseconds; returns ops/s. */
function decode(name, kind, ms) {
  return decodeFor(decoders[name], pools.decode[kind], ms);
}

/** Verifies tokens of `alg` one after the other (each awaited) for `ms`; returns ops/s. */
async function verify(name, alg, ms) {
  const fn = verifiers[alg][name];
  const pool = pools.verify[alg];
  const mask = pool.length - 1;
  let i = 0;
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let k = 0; k < 4; k++) {
      if (!(await fn(pool[i]))) throw new Error(`${name} ${alg} refused a valid token`);
      i = (i + 1) & mask;
    }
    n += 4;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

window.bench = { setup, decode, verify };
