// The shared-store mode of the e2e harness (TOKEN_SERVER_E2E_SHARED=1, a step of
// scripts/test.sh): a spec's "server" is a redis-server (append-only file, fsync always), three
// server instances on it and nginx round robin in front of them, one origin. Everything runs on
// free loopback ports from a temporary directory and is stopped by its PID. The nginx
// configuration is the one the Rust tests use (tests/nginx-round-robin.conf).

import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ROOT, controls, launchInstance } from "./server.mjs";
import { freePort } from "./ports.mjs";

const INSTANCES = 3;
const READY_TIMEOUT_MS = 20_000;

/** Resolves once something accepts connections on `port` (readiness, not a sleep). */
async function listening(port, what) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const ok = await new Promise((done) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => { socket.destroy(); done(true); });
      socket.once("error", () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} does not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs `child` until `stop()`: SIGTERM by its PID, then waits for its exit. */
function stoppable(child) {
  const exited = new Promise((done) => child.once("exit", done));
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
}

async function startRedis(dir, port) {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no",
      "--appendonly", "yes", "--appendfsync", "always", "--dir", dir],
    { stdio: "ignore" },
  );
  const stop = stoppable(child);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString().trim() !== "PONG") {
    if (Date.now() > deadline) throw new Error(`redis-server does not answer on ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return stop;
}

async function startNginx(dir, port, upstreams) {
  const servers = upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=30s;`).join("\n");
  const conf = readFileSync(join(ROOT, "tests/nginx-round-robin.conf"), "utf8")
    .replaceAll("@DIR@", dir)
    .replaceAll("@PORT@", String(port))
    .replaceAll("@SERVERS@", servers);
  const path = join(dir, "nginx.conf");
  writeFileSync(path, conf);
  const child = spawn("/usr/sbin/nginx", ["-p", dir, "-c", path, "-g", "daemon off;"], { stdio: "ignore" });
  const stop = stoppable(child);
  await listening(port, "nginx");
  return stop;
}

export async function startShared({ name, accessTtl, grace, args, port, instances: count = INSTANCES }) {
  const dir = mkdtempSync(join(tmpdir(), `e2e-shared-${name}-`));
  const [redisPort, nginxPort] = [await freePort(), port ?? (await freePort())];
  let stopRedis = await startRedis(dir, redisPort);
  const url = `http://localhost:${nginxPort}`;
  // One key-encryption key and one issuer for the service, as in a deployment.
  const env = { TOKEN_SERVER_KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64") };
  // The page's origin is nginx's, not an instance's own port (each allows only its own by default).
  const shared = ["--store", `redis://127.0.0.1:${redisPort}`, "--issuer", url, "--allowed-origin", url];
  // One after another: the first creates the signing key, the others load it.
  const instances = [];
  for (let i = 0; i < count; i++) {
    instances.push(await launchInstance({ name: `${name}-${i}`, accessTtl, grace, args: [...shared, ...args], env }));
  }
  const stopNginx = await startNginx(dir, nginxPort, instances.map((i) => i.port));
  const alive = new Set(instances.keys());
  const each = (f) => Promise.all([...alive].map((i) => f(controls(`http://127.0.0.1:${instances[i].port}`))));

  return {
    url,
    port: nginxPort,
    accessTtl,
    logPath: instances[0].logPath,
    shared: true,
    /** The counters of every running instance, added up. */
    async stats() {
      const total = {};
      for (const s of await each((c) => c.stats())) {
        for (const [k, v] of Object.entries(s)) if (typeof v === "number") total[k] = (total[k] ?? 0) + v;
      }
      return total;
    },
    /** The counters of each running instance, in instance order. */
    instanceStats: () => each((c) => c.stats()),
    reset: () => each((c) => c.reset()),
    /** On every instance: whichever answers, the next `count` refreshes it gets fail. */
    failRefresh: (count, status, retryAfter) => each((c) => c.failRefresh(count, status, retryAfter)),
    dropNextRefresh() {
      throw new Error("dropNextRefresh is one instance's switch; the shared mode has no single next refresh");
    },
    /** Kills instance `i` (SIGKILL: no graceful shutdown) while nginx still lists it. */
    async killInstance(i) {
      alive.delete(i);
      await instances[i].stop("SIGKILL");
    },
    /** Stops Redis (SIGTERM; the append-only file is fsynced on every write) and starts it again. */
    async restartRedis() {
      await stopRedis();
      stopRedis = await startRedis(dir, redisPort);
    },
    async stop() {
      await stopNginx();
      for (const i of instances) await i.stop();
      await stopRedis();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
