// Prints the size of the package's wasm and JS glue: raw, gzip -9 and brotli (max quality).
// `node scripts/size.mjs DIR [FILE…]`: the files of DIR (default: the wasm and the glue).
import { readFileSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";

const dir = process.argv[2] ?? "pkg";
const files = process.argv.length > 3 ? process.argv.slice(3) : ["wasm_token_manager_bg.wasm", "wasm_token_manager.js"];
const rows = files.map((f) => {
  const buf = readFileSync(`${dir}/${f}`);
  return {
    file: f,
    raw: buf.length,
    gzip: gzipSync(buf, { level: 9 }).length,
    brotli: brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
});
const total = rows.reduce((t, r) => ({ file: "total", raw: t.raw + r.raw, gzip: t.gzip + r.gzip, brotli: t.brotli + r.brotli }), { raw: 0, gzip: 0, brotli: 0 });
console.log("| file | raw | gzip -9 | brotli |\n|---|---:|---:|---:|");
for (const r of [...rows, total]) console.log(`| ${r.file} | ${r.raw} | ${r.gzip} | ${r.brotli} |`);
