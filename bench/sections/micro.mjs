// 2. Decode and 3. Verify, in one page: contestants interleaved round by round (the order
// rotates every round), ops/s per round, ratios taken within each round, medians over rounds.
import { openPage } from "../lib/browser.mjs";
import { int, max, median, min, ratioSpread, table } from "../lib/stats.mjs";

const DISPLAY = {
  decodeClaims: "**`decodeClaims`**",
  jwtDecode: "jwt-decode `jwtDecode`",
  decodeJwt: "jose `decodeJwt`",
  floor: "floor: `atob` + `JSON.parse`",
  verifyToken: "**`verifyToken`** (inline `jwks`)",
  "verifyToken (baseline)": "`verifyToken` of the `--verify-baseline` build",
  "jwtVerify (local JWKS)": "jose `jwtVerify` + `createLocalJWKSet`",
  "jwtVerify (CryptoKey)": "jose `jwtVerify` + imported `CryptoKey`",
};
const VERIFY_FLOOR = "floor: `crypto.subtle.verify`";

/**
 * Opens the micro page (cross-origin isolated, for a 5 µs `performance.now()`) and runs its
 * `setup` with the run's tokens.
 */
export async function openMicroPage(browser, origin, inputs) {
  const { context, page } = await openPage(browser, origin, { isolated: true });
  await page.evaluate(() => import("/dist/micro.js"));
  const names = await page.evaluate((i) => window.bench.setup(i), inputs);
  return { context, page, names };
}

/**
 * `rounds` rounds; in each, every contestant of every group is measured for `ms`, in an order
 * rotated every round. `call(name, group, ms)` returns ops/s. One warm-up call each first.
 */
async function interleaved({ groups, contestants, rounds, ms, call }) {
  const ops = {};
  for (const g of groups) {
    ops[g] = Object.fromEntries(contestants.map((c) => [c, []]));
    for (const c of contestants) await call(c, g, ms);
  }
  for (let r = 0; r < rounds; r++) {
    for (const g of groups) {
      const order = contestants.map((_, i) => contestants[(i + r) % contestants.length]);
      for (const c of order) ops[g][c].push(await call(c, g, ms));
    }
  }
  return ops;
}

/** Per group: ops/s median and range, and the per-round ratio to `ours`. */
function rows(ops, contestants, ours, groupLabel, display) {
  const out = [];
  for (const [g, byName] of Object.entries(ops)) {
    for (const c of contestants) {
      const perRound = byName[c].map((x, i) => x / byName[ours][i]);
      out.push([
        groupLabel(g), display(c), int(median(byName[c])),
        `${int(min(byName[c]))}–${int(max(byName[c]))}`,
        c === ours ? "1×" : ratioSpread(perRound),
      ]);
    }
  }
  return out;
}

/** Median over rounds of contestant/ours ratios, for the summary. */
export function medianRatio(byName, c, ours) {
  return median(byName[c].map((x, i) => x / byName[ours][i]));
}

export async function decodeSection({ page, names, rounds, ms, tokenLabels }) {
  const ops = await interleaved({
    groups: ["small", "large"], contestants: names.decoders, rounds, ms,
    call: (c, g, t) => page.evaluate(([c, g, t]) => window.bench.decode(c, g, t), [c, g, t]),
  });
  const md = table(
    ["token", "decoder", "ops/s (median)", "ops/s range", "÷ `decodeClaims`, per round: median [min–max]"],
    "llrrr",
    rows(ops, names.decoders, "decodeClaims", (g) => tokenLabels[g], (c) => DISPLAY[c]),
  );
  return { md, ops };
}

export async function verifySection({ page, names, rounds, ms }) {
  const ops = await interleaved({
    groups: ["RS256", "ES256", "EdDSA"], contestants: names.verifiers, rounds, ms,
    call: (c, g, t) => page.evaluate(([c, g, t]) => window.bench.verify(c, g, t), [c, g, t]),
  });
  const md = table(
    ["alg", "verifier", "ops/s (median)", "ops/s range", "÷ `verifyToken`, per round: median [min–max]"],
    "llrrr",
    rows(ops, names.verifiers, "verifyToken", (g) => g, (c) => (c === "floor" ? VERIFY_FLOOR : DISPLAY[c])),
  );
  return { md, ops };
}
