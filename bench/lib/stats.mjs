// Small statistics and formatting helpers shared by the sections.

/** Median of a list of numbers (mean of the two middle values for an even count). */
export function median(xs) {
  return quantile(xs, 0.5);
}

/** Quantile q in [0, 1] with linear interpolation between closest ranks. */
export function quantile(xs, q) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function min(xs) {
  return Math.min(...xs);
}

export function max(xs) {
  return Math.max(...xs);
}

/** 1234567 → "1,234,567". */
export function int(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
}

/** A number with `digits` significant decimals, for ms and ratios. */
export function num(n, digits = 2) {
  if (!Number.isFinite(n)) return "–";
  return n.toFixed(digits);
}

/** A difference with its sign: "+610", "−511" (a true minus). */
export function signed(n, digits = 0) {
  if (!Number.isFinite(n)) return "–";
  return `${n < 0 ? "−" : "+"}${Math.abs(n).toFixed(digits)}`;
}

/** A ratio as "3.2×" (two significant figures below 10). */
export function ratio(r) {
  if (!Number.isFinite(r)) return "–";
  if (r >= 100) return `${Math.round(r)}×`;
  if (r >= 10) return `${r.toFixed(1)}×`;
  return `${r.toFixed(2)}×`;
}

/** "median [min–max]" of ratios. */
export function ratioSpread(rs) {
  return `${ratio(median(rs))} [${ratio(min(rs))}–${ratio(max(rs))}]`;
}

/** A Markdown table from a header row, alignment string ("lrr…") and rows. */
export function table(header, align, rows) {
  const sep = [...align].map((a) => (a === "r" ? "---:" : "---"));
  return [header, sep, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
