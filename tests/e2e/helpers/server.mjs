// Starts the reference server for one spec file: a free port, an in-memory database, the demo
// account, the test switches and lifetimes of seconds. Its log goes to tests/e2e/artifacts/.

import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const ARTIFACTS = join(ROOT, "tests/e2e/artifacts");
const BINARY = process.env.TOKEN_MANAGER_SERVER ?? join(ROOT, "target/debug/token-manager-server");
const START_TIMEOUT_MS = 30_000;

export const DEMO_USER = { username: "demo", password: "demo-password" };

/**
 * Runs the server until `stop()`. `accessTtl` is the access token lifetime in seconds, `port`
 * a fixed port instead of a free one.
 * Resolves once it printed `listening on http://127.0.0.1:PORT`; `url` is the same port on
 * `localhost`, the host the browser must use for the `__Host-` cookie.
 */
export async function startServer({ name, accessTtl = 4, grace = 10, args = [], port, instances } = {}) {
  if (SHARED) {
    // scripts/test.sh's shared-store step: 3 instances (or `instances`) on one Redis behind
    // nginx, which listens on `port` if given.
    const { startShared } = await import("./shared.mjs");
    return startShared({ name, accessTtl, grace, args, port, instances });
  }
  // `port`: the origin must be known in advance (the upstream mode's registered callback).
  const listen = port === undefined ? [] : ["--listen", `127.0.0.1:${port}`];
  const instance = await launchInstance({ name: name ?? process.pid, accessTtl, grace, args: [...listen, ...args] });
  const url = `http://localhost:${instance.port}`;
  return { url, port: instance.port, accessTtl, logPath: instance.logPath, ...controls(url), stop: instance.stop };
}

/** `TOKEN_SERVER_E2E_SHARED=1`: every spec's server is 3 instances on one Redis behind nginx. */
export const SHARED = process.env.TOKEN_SERVER_E2E_SHARED === "1";

/**
 * One server process; resolves with its port once it printed `listening on
 * http://127.0.0.1:PORT`. `env` is added to the environment.
 */
export async function launchInstance({ name, accessTtl, grace, args = [], env = {} }) {
  if (!existsSync(BINARY)) {
    throw new Error(`${BINARY} is missing: run scripts/e2e.sh (it builds the server)`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = join(ARTIFACTS, `server-${name}.log`);
  const log = createWriteStream(logPath);
  const child = spawn(
    BINARY,
    [
      "--listen", "127.0.0.1:0",
      "--database", ":memory:",
      "--access-ttl", String(accessTtl),
      "--grace", String(grace),
      "--demo-user", `${DEMO_USER.username}:${DEMO_USER.password}`,
      "--test-switches",
      "--www", join(ROOT, "www"),
      "--pkg", join(ROOT, "pkg"),
      ...args,
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } },
  );
  child.stderr.pipe(log);
  const exited = new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));

  const port = await new Promise((ready, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error(`server did not start within ${START_TIMEOUT_MS} ms; log: ${logPath}`)), START_TIMEOUT_MS);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        ready(Number(m[1]));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`server exited early (${code ?? signal}); log: ${logPath}`));
    });
  });

  return {
    port,
    logPath,
    /** SIGTERM (or `signal`), then SIGKILL if it has not exited within 5 s. */
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      log.end();
    },
  };
}

/** The test switches and counters of the server at `url`. */
export function controls(url) {
  const call = async (path, body) => {
    const response = await fetch(url + path, {
      method: body === undefined ? "GET" : "POST",
      // The switches take the CSRF checks of refresh and logout: the header is required.
      headers: body === undefined ? {} : { "Content-Type": "application/json", "X-Requested-With": "wasm-token-manager" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    return response.json();
  };
  return {
    /** The server's counters (`refresh_requests`, `rotations`, `grace_replays` …). */
    stats: () => call("/test/stats"),
    /** Clears the counters and every switch. */
    reset: () => call("/test/reset", {}),
    /** The next `count` refreshes fail with `status`; `count: 0` cancels. */
    failRefresh: (count, status, retryAfter) =>
      call("/test/fail-refresh", { count, status, ...(retryAfter == null ? {} : { retry_after: retryAfter }) }),
    /** The next refresh rotates the cookie, then the server drops the connection unanswered. */
    dropNextRefresh: () => call("/test/drop-next-refresh", {}),
  };
}
