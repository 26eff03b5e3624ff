// `decodeClaims(token)`'s byte work (src/decode.rs) with the page's native string and base64
// code: the token split, its form checked, and its claims segment decoded straight into wasm
// memory (`setFromBase64`, or `atob` where that is missing), where the core scans the JSON
// (UTF-8, depth, duplicate names, claim types). This is only a fast path: anything it does not
// accept, the wasm decodes from the start, so every error is still the core's. It accepts a
// token only when the core's own checks would pass on the same bytes: at most the length
// limit, three segments of strict canonical unpadded base64url, and a header segment equal to
// the last one the core accepted.

/** The signature segment (from `lastIndex`): base64url to the end of the string. */
const SIGNATURE = /[\w-]*$/y;
const BASE64URL = { alphabet: "base64url" };

/** The header segment of the last token the core decoded; `""` for none yet. */
let header = "";

/** The six bits of a base64url character (the character is known to be one). */
const sextet = (c) => (c > 96 ? c - 71 : c > 64 ? c - 65 : c > 47 ? c + 4 : c === 45 ? 62 : 63);

/** True when the `n` base64url characters ending before `end` are a canonical unpadded
 * encoding as far as their length and the unused bits of the last character go. */
function canonical(token, end, n) {
  const rest = n & 3;
  return rest === 0 || (rest !== 1 && (sextet(token.charCodeAt(end - 1)) & (rest === 2 ? 15 : 3)) === 0);
}

/** The claims segment of `token` decoded into `into` (a view of wasm memory at least
 * `maxLen * 3 / 4` long): the number of bytes written, or -1 for "decode it in the wasm". */
export function claimsInto(token, into, maxLen) {
  if (typeof token !== "string" || token.length > maxLen) return -1;
  const a = header.length;
  const b = token.indexOf(".", a + 1);
  if (a === 0 || token.charCodeAt(a) !== 46 || !token.startsWith(header) || b < a + 2) return -1;
  SIGNATURE.lastIndex = b + 1;
  const n = b - a - 1;
  if (!SIGNATURE.test(token) || !canonical(token, b, n) || !canonical(token, token.length, token.length - b - 1)) {
    return -1;
  }
  let written;
  try {
    written = decodeInto(into, token.slice(a + 1, b));
  } catch {
    return -1;
  }
  // Whitespace (skipped) and `=` padding (taken) write fewer bytes than the characters carry.
  return written === (n * 6) >> 3 ? written : -1;
}

/** Decodes base64url `text` into `into`: the bytes written. Throws (or answers -1) on a
 * character outside base64url. `Uint8Array.prototype.setFromBase64` where the page has it
 * (Chromium 140, Firefox 133, Safari 18.2 and later); else `atob`, which reads the standard
 * alphabet, so text with a `+` or `/` of its own is refused first. */
function decodeInto(into, text) {
  if (into.setFromBase64 !== undefined) return into.setFromBase64(text, BASE64URL).written;
  if (/[+/]/.test(text)) return -1;
  const bytes = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  if (bytes.length > into.length) return -1;
  for (let i = 0; i < bytes.length; i++) into[i] = bytes.charCodeAt(i);
  return bytes.length;
}

/** Remembers the header segment (the first `len` characters) of a token the core has just
 * decoded. */
export function accepted(token, len) {
  header = token.slice(0, len);
}

/** `Object.freeze(JSON.parse(json))`, for JSON the core checked or wrote (always an object). */
export const frozen = (json) => Object.freeze(JSON.parse(json));
