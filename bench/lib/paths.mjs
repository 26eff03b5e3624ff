// Where things are: the repository root, the bench directory and its generated outputs.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = join(BENCH, "..");
/** Served at / by the reference server during the run (pages and bundled page scripts). */
export const WWW = join(BENCH, "www");
/** Bundles built by the run (git-ignored). */
export const DIST = join(WWW, "dist");
/** Raw samples and server logs (git-ignored). */
export const RAW_DIR = join(BENCH, "results-raw");
