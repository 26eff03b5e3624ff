// Starts the reference server (target/debug/token-manager-server) on a free loopback port,
// with its test switches (for /test/stats), and stops it again.
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { ROOT, RAW_DIR } from "./paths.mjs";

const BINARY = join(ROOT, "target/debug/token-manager-server");

// Servers still running when the run exits (a section that timed out) are killed with it.
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * @param {{ name: string, accessTtl: number, www: string, alg?: string }} opts
 * @returns {Promise<{ origin: string, stats(): Promise<object>, stop(): Promise<void> }>}
 */
export async function startServer({ name, accessTtl, www, alg = "RS256" }) {
  const child = spawn(
    BINARY,
    [
      "--listen", "127.0.0.1:0",
      "--database", ":memory:",
      "--demo-user", "demo:demo-password",
      "--access-ttl", String(accessTtl),
      "--alg", alg,
      "--test-switches",
      "--www", www,
      "--pkg", join(ROOT, "pkg"),
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  running.add(child);
  child.on("exit", () => running.delete(child));
  child.stderr.pipe(createWriteStream(join(RAW_DIR, `server-${name}.log`)));
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server ${name} did not start in 30 s`)), 30_000);
    child.on("error", (e) => { clearTimeout(timer); reject(e); });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`server ${name} exited with ${code} (see ${RAW_DIR}/server-${name}.log)`)); });
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
  child.removeAllListeners("exit");
  // localhost, not 127.0.0.1: the page must be a secure context for the `__Host-` cookie, and
  // the server's default allowed origins include http://localhost:PORT.
  const origin = `http://localhost:${port}`;
  return {
    origin,
    async stats() {
      const res = await fetch(`http://127.0.0.1:${port}/test/stats`);
      if (!res.ok) throw new Error(`GET /test/stats: ${res.status}`);
      return res.json();
    },
    stop() {
      return new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        const force = setTimeout(() => child.kill("SIGKILL"), 6_000);
        child.once("exit", () => { clearTimeout(force); resolve(); });
        child.kill("SIGTERM");
      });
    },
  };
}
