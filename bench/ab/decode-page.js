// In-page side of bench/decode-ab.mjs: two builds of the package (loaded from /old/ and /new/),
// jose's decodeJwt and the atob + JSON.parse floor, each measured for a fixed time.
import { decodeJwt } from "jose";

function floorDecode(token) {
  const a = token.indexOf(".");
  const b = token.indexOf(".", a + 1);
  return JSON.parse(atob(token.slice(a + 1, b).replace(/-/g, "+").replace(/_/g, "/")));
}

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
  const fn = decoders[name];
  const pool = pools[kind];
  const mask = pool.length - 1;
  let i = 0;
  let n = 0;
  let sink = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let k = 0; k < 32; k++) {
      sink += fn(pool[i]).exp;
      i = (i + 1) & mask;
    }
    n += 32;
    t = performance.now();
  }
  if (!(sink > 0)) throw new Error("decode produced nothing");
  return (n * 1000) / (t - t0);
}

window.ab = { setup, decode };
