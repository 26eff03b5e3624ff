// The few pieces of the wasm binary format that scripts/minify-imports.mjs and
// scripts/minify-exports.mjs need: LEB128 integers, length-prefixed names, and rewriting one
// section in place (every other section is copied byte for byte).

/** The unsigned LEB128 integer at `pos`: `[value, position after it]`. */
export function leb(buf, pos) {
  let result = 0, shift = 0, byte;
  do { byte = buf[pos++]; result |= (byte & 0x7f) << shift; shift += 7; } while (byte & 0x80);
  return [result >>> 0, pos];
}

/** `n` as unsigned LEB128. */
export function encLeb(n) {
  const out = [];
  do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n);
  return Buffer.from(out);
}

/** A name as the binary format writes it: its UTF-8 length, then its bytes. */
export const encStr = (s) => { const b = Buffer.from(s, "utf8"); return Buffer.concat([encLeb(b.length), b]); };

/** The name (length-prefixed UTF-8) at `pos`: `[name, position after it]`. */
export function readName(buf, pos) {
  const [len, p] = leb(buf, pos);
  return [buf.toString("utf8", p, p + len), p + len];
}

/**
 * `wasm` with each section of id `id` replaced by `rewrite(start, end)`'s body (a Buffer;
 * `start`..`end` is the old body's range in `wasm`). The section's size is written anew.
 */
export function rewriteSection(wasm, id, rewrite) {
  let pos = 8;
  const parts = [wasm.subarray(0, 8)];
  while (pos < wasm.length) {
    const [size, start] = leb(wasm, pos + 1);
    const end = start + size;
    if (wasm[pos] === id) {
      const body = rewrite(start, end);
      parts.push(Buffer.from([id]), encLeb(body.length), body);
    } else {
      parts.push(wasm.subarray(pos, end));
    }
    pos = end;
  }
  return Buffer.concat(parts);
}
