// What the in-page decoding benchmarks share (bench/www/micro.js for `npm run bench`,
// bench/ab/decode-page.js for bench/decode-ab.mjs), bundled into each by esbuild.

/** The floor: what any decoder must do at least (slice, base64url → base64, atob, JSON.parse). */
export function floorDecode(token) {
  const a = token.indexOf(".");
  const b = token.indexOf(".", a + 1);
  return JSON.parse(atob(token.slice(a + 1, b).replace(/-/g, "+").replace(/_/g, "/")));
}

/** Decodes the tokens of `pool` (a power-of-two count) round-robin with `fn` for `ms`
 * milliseconds; returns operations per second. */
export function decodeFor(fn, pool, ms) {
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
