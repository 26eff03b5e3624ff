// In-page side of bench/decode-ab.mjs: two builds of the package (loaded from /old/ and /new/),
// jose's decodeJwt and the atob + JSON.parse floor, each measured for a fixed time.
import { decodeJwt } from "jose";
import { decodeFor, floorDecode } from "../www/decode-loop.js";

let decoders;
let pools;

async function setup(tokens) {
  const old = await import("/old/wasm_token_manager.js");
  await old.default();
  const neu = await import("/new/wasm_token_manager.js");
  await neu.default();
  decoders = {
    old: (t) => old.decodeClaims(t),
    new: (t) => neu.decodeClaims(t),
    jose: (t) => decodeJwt(t),
    floor: floorDecode,
  };
  pools = tokens;
  for (const [kind, pool] of Object.entries(tokens)) {
    const want = JSON.stringify(Object.entries(floorDecode(pool[0])).sort());
    for (const [name, fn] of Object.entries(decoders)) {
      const got = fn(pool[0]);
      if (JSON.stringify(Object.entries(got).sort()) !== want) throw new Error(`${name} decodes ${kind} wrongly`);
      if ((name === "old" || name === "new") && !Object.isFrozen(got)) throw new Error(`${name}: not frozen`);
    }
  }
  return Object.keys(decoders);
}

function decode(name, kind, ms) {
  return decodeFor(decoders[name], pools[kind], ms);
}

window.ab = { setup, decode };
