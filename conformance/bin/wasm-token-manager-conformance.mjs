#!/usr/bin/env node
// Command line of the conformance kit: checks over HTTP that a backend implements the server
// contract of wasm-token-manager (README "Server contract"). Exit status: 0 every required
// check passed (skips and warnings allowed), 1 a check failed, 2 bad usage, 3 the backend
// could not be reached.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatResult, formatSummary, runConformance } from "../lib/run.mjs";
import { CHECKS } from "../lib/checks.mjs";
import { networkReason } from "../lib/http.mjs";

const USAGE = `Usage: wasm-token-manager-conformance BASE_URL [options]

Checks over HTTP that the backend at BASE_URL implements the server contract of
wasm-token-manager: login answer, refresh cookie attributes, rotation, concurrent refresh,
grace window, reuse revocation, logout and denylist, CSRF and CORS refusals, error bodies,
JWKS, WWW-Authenticate and Retry-After. It signs in about 15 times with one account and,
last, sends two wrong passwords (one for the account, one for an unknown user).

Credentials (never on the command line, never printed):
  CONFORMANCE_USERNAME, CONFORMANCE_PASSWORD   environment variables, or
  --credentials-file FILE    JSON {"username","password"} or one line NAME:PASSWORD
  --username NAME            the account's name (overrides the file and the variable)

Options:
  --origin URL               Origin of the SPA's pages (default: BASE_URL's origin; another
                             origin also checks CORS, and must be on the backend's allowlist)
  --foreign-origin URL       an origin the backend must refuse (default https://evil.example)
  --login-path PATH          default /auth/login
  --refresh-path PATH        default /auth/refresh
  --logout-path PATH         default /auth/logout
  --jwks-path PATH           default /.well-known/jwks.json
  --resource-path PATH       a bearer-protected endpoint (default /api/me)
  --cookie-name NAME         the refresh cookie (default __Host-refresh)
  --grace-seconds N          the backend's grace window for rotated cookies (default 10, the
                             reference server's); the reuse checks wait N + 1 seconds
  --test-switches            the backend has the reference server's POST /test/fail-refresh,
                             which the Retry-After checks need (skipped otherwise)
  --timeout-ms N             per request (default 10000)
  --only ID[,ID...]          run only these checks (an ID or a prefix such as csrf)
  --strict                   a recommended check that does not hold fails the run
  --quiet                    print expectations only for checks that did not pass
  --json                     print the report as JSON instead of text
  --list                     list the checks and exit
  -h, --help                 this text

Exit status: 0 no check failed, 1 a check failed, 2 bad usage, 3 backend unreachable.`;

function usageError(message) {
  process.stderr.write(`wasm-token-manager-conformance: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function parse(argv) {
  // A password given as a flag would show in `ps` and the shell's history: refuse it before
  // parseArgs could echo it back in an "unknown option" message.
  if (argv.some((a) => /^--?pass(word|wd)?(=|$)/i.test(a))) {
    usageError("a password is never taken from the command line (it would show in ps and shell history): set CONFORMANCE_PASSWORD or use --credentials-file");
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        origin: { type: "string" },
        "foreign-origin": { type: "string", default: "https://evil.example" },
        "login-path": { type: "string", default: "/auth/login" },
        "refresh-path": { type: "string", default: "/auth/refresh" },
        "logout-path": { type: "string", default: "/auth/logout" },
        "jwks-path": { type: "string", default: "/.well-known/jwks.json" },
        "resource-path": { type: "string", default: "/api/me" },
        "cookie-name": { type: "string", default: "__Host-refresh" },
        "grace-seconds": { type: "string", default: "10" },
        "test-switches": { type: "boolean", default: false },
        "timeout-ms": { type: "string", default: "10000" },
        username: { type: "string" },
        "credentials-file": { type: "string" },
        only: { type: "string" },
        strict: { type: "boolean", default: false },
        quiet: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        list: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    usageError(e.message);
  }
  return parsed;
}

function origin(value, flag) {
  try {
    const url = new URL(value);
    if (!["http:", "https:"].includes(url.protocol)) throw new Error();
    return url.origin;
  } catch {
    usageError(`${flag} must be an http(s) origin such as https://app.example, not ${JSON.stringify(value)}`);
  }
}

function seconds(value, flag, { min = 0 } = {}) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) usageError(`${flag} must be an integer >= ${min}, not ${JSON.stringify(value)}`);
  return n;
}

function credentials(values) {
  let username = process.env.CONFORMANCE_USERNAME;
  let password = process.env.CONFORMANCE_PASSWORD;
  const file = values["credentials-file"];
  if (file) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      usageError(`cannot read --credentials-file ${file}: ${e.code ?? e.message}`);
    }
    if (text.trimStart().startsWith("{")) {
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        usageError(`--credentials-file ${file} is not valid JSON`);
      }
      ({ username, password } = json);
    } else {
      const line = text.split(/\r?\n/)[0];
      const i = line.indexOf(":");
      if (i <= 0) usageError(`--credentials-file ${file}: expected NAME:PASSWORD on the first line`);
      username = line.slice(0, i);
      password = line.slice(i + 1);
    }
  }
  if (values.username) username = values.username;
  if (typeof username !== "string" || !username) usageError("no username: set CONFORMANCE_USERNAME, --username or --credentials-file");
  if (typeof password !== "string" || !password) usageError("no password: set CONFORMANCE_PASSWORD or use --credentials-file");
  return { username, password };
}

function path(value, flag) {
  if (!value.startsWith("/")) usageError(`${flag} must start with /, not ${JSON.stringify(value)}`);
  return value;
}

async function main() {
  const { values, positionals } = parse(process.argv.slice(2));
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.list) {
    for (const c of CHECKS) process.stdout.write(`${c.id}${c.level === "recommended" ? " (recommended)" : ""}: ${c.title}\n`);
    return 0;
  }
  if (positionals.length !== 1) usageError(positionals.length ? "one BASE_URL only" : "BASE_URL is missing");
  let baseUrl;
  try {
    baseUrl = new URL(positionals[0]);
    if (!["http:", "https:"].includes(baseUrl.protocol)) throw new Error();
  } catch {
    usageError(`BASE_URL must be an http(s) URL, not ${JSON.stringify(positionals[0])}`);
  }
  if (!baseUrl.pathname.endsWith("/")) baseUrl.pathname += "/";
  const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = only?.filter((p) => !CHECKS.some((c) => c.id === p || c.id.startsWith(`${p}.`)));
  if (unknown?.length) usageError(`--only: no check is named ${unknown.join(", ")} (see --list)`);

  const config = {
    baseUrl,
    origin: values.origin ? origin(values.origin, "--origin") : baseUrl.origin,
    foreignOrigin: origin(values["foreign-origin"], "--foreign-origin"),
    cookieName: values["cookie-name"],
    graceSeconds: seconds(values["grace-seconds"], "--grace-seconds"),
    timeoutMs: seconds(values["timeout-ms"], "--timeout-ms", { min: 1 }),
    testSwitches: values["test-switches"],
    strict: values.strict,
    only,
    paths: {
      // Relative to BASE_URL, so a backend mounted under a path prefix works.
      login: path(values["login-path"], "--login-path").slice(1),
      refresh: path(values["refresh-path"], "--refresh-path").slice(1),
      logout: path(values["logout-path"], "--logout-path").slice(1),
      jwks: path(values["jwks-path"], "--jwks-path").slice(1),
      resource: path(values["resource-path"], "--resource-path").slice(1),
      failRefresh: "test/fail-refresh",
    },
  };
  if (config.foreignOrigin === config.origin) usageError("--foreign-origin must differ from --origin");
  const creds = credentials(values);

  // Reachability first: an unreachable backend is not a conformance finding.
  try {
    await fetch(new URL(config.paths.jwks, baseUrl), { redirect: "manual", signal: AbortSignal.timeout(config.timeoutMs) });
  } catch (e) {
    process.stderr.write(`wasm-token-manager-conformance: cannot reach ${baseUrl.origin}: ${networkReason(e, config.timeoutMs)}\n`);
    return 3;
  }

  if (!values.json) process.stdout.write(`Checking ${baseUrl.href} as a page of ${config.origin}\n\n`);
  const report = await runConformance(config, creds, (result) => {
    if (!values.json) process.stdout.write(`${formatResult(result, { verbose: !values.quiet })}\n`);
  });
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`\n${formatSummary(report)}\n`);
  return report.summary.failed > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    // Not expected: every check catches its own errors. No secret can be in `e`'s message
    // (checks scrub theirs), but print only its name and message, never a dump of state.
    process.stderr.write(`wasm-token-manager-conformance: internal error: ${e?.name}: ${e?.message}\n`);
    process.exitCode = 1;
  },
);
