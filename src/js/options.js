// The `TokenManager` constructor's options, read and checked in JavaScript (src/options.rs):
// each check here was a wasm ↔ JS crossing per option (`Reflect.get`, `Object.keys`, `new URL`
// and its getters) and its message built in wasm; the wasm now makes one call and gets the
// values back in two arrays (README "Size", eighth pass). What a value means (the schedule's
// `Config`, the lock timeout, the verifier, DPoP) stays in the wasm.
//
// A typo in an option name or a value of the wrong type is a constructor error with a code
// (`unknown_option`, `invalid_option`, `insecure_endpoint`), never a silently ignored setting: a
// misspelt `apiOrigins` would otherwise widen or narrow where the token goes.

import { coded } from "./error.js";

const KNOWN = [
  "verify", "dpop", "loginUrl", "authorizeUrl", "refreshUrl", "logoutUrl", "apiOrigins",
  "refreshLeadSeconds", "leewaySeconds", "requestTimeoutMs", "crossTab", "exposeToken",
  "replayNonIdempotent", "retry", "idleTimeoutSeconds", "idleWarningSeconds",
];
// In the order src/options.rs reads them (login, refresh, logout, authorize).
const ENDPOINTS = [
  ["loginUrl", "/auth/login"],
  ["refreshUrl", "/auth/refresh"],
  ["logoutUrl", "/auth/logout"],
  // `loginWithRedirect()`'s target: the server's authorize endpoint (upstream mode).
  ["authorizeUrl", "/auth/authorize"],
];
const ORIGINS = 'an array of origins such as "https://api.example.com"';

const invalid = (name, expected) =>
  coded("invalid_option", "option `" + name + "` must be " + expected);

// (`typeof` is "function" for a function: refused too.)
const plain = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

function checkKeys(obj, known, prefix) {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) throw coded("unknown_option", "unknown option `" + prefix + key + "`");
  }
}

/** A number option within whole-number bounds, or NaN when absent. */
function number(obj, name, min, max) {
  const v = obj[name];
  if (v === undefined) return NaN;
  if (typeof v !== "number" || !(v >= min && v <= max)) {
    throw invalid(name, "a number from " + min + " to " + max);
  }
  return v;
}

/** A boolean option as 1 or 0. */
function boolean(obj, name, fallback) {
  const v = obj[name];
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") throw invalid(name, "a boolean");
  return +v;
}

/** `https:` URLs, and `http:` on a loopback host (exactly `localhost`, `[::1]` or
 * `127.x.y.z`, which the URL parser always writes in that dotted form), where browsers treat
 * the origin as potentially trustworthy and `Secure` cookies work. As
 * core::endpoint::loopback_host. */
export const secure = (url) =>
  url.protocol === "https:" ||
  (url.protocol === "http:" &&
    (url.hostname === "localhost" || url.hostname === "[::1]" ||
      /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(url.hostname)));

function endpoint(obj, name, fallback, base) {
  const raw = obj[name];
  if (raw !== undefined && typeof raw !== "string") throw invalid(name, "a URL string");
  let url;
  try {
    url = new URL(raw === undefined ? fallback : raw, base);
  } catch {
    throw invalid(name, "a valid URL");
  }
  if (!secure(url)) {
    throw coded("insecure_endpoint", "option `" + name + "` must be an https: URL or a loopback http: URL");
  }
  return url.href;
}

function origins(obj, page) {
  const v = obj.apiOrigins;
  if (v === undefined) return [page];
  if (!Array.isArray(v)) throw invalid("apiOrigins", ORIGINS);
  return v.map((s) => {
    let url;
    try {
      url = typeof s === "string" && new URL(s);
    } catch {
      // refused below
    }
    // An origin, not a URL: a path, query, fragment or credentials would suggest a scope the
    // check does not enforce. The serialized URL of a bare origin is the origin and `/`; an
    // empty `?` or `#` shows only in the text given.
    if (!url || url.href !== url.origin + "/" || /[?#]/.test(s) || url.origin === "null") {
      throw invalid("apiOrigins", ORIGINS);
    }
    if (!secure(url)) {
      throw coded("insecure_endpoint", "option `apiOrigins` may only list https: origins or loopback http: origins");
    }
    return url.origin;
  });
}

/** Reads and checks the options object (`undefined` or `null`: all defaults). Returns the
 * endpoints' absolute URLs (login, refresh, logout, authorize) followed by the API origins,
 * one per line (the URL parser never serializes a line break), and writes the rest into `out`, NaN where an option is absent: refreshLeadSeconds,
 * leewaySeconds, requestTimeoutMs, retry.base, retry.cap, retry.budget, idleTimeoutSeconds,
 * idleWarningSeconds, then crossTab, exposeToken, replayNonIdempotent, dpop and whether
 * `verify` is given, as 1 or 0. Throws a `TokenManagerError` for the first bad option. */
export function parseOptions(value, out) {
  const obj = value === undefined || value === null ? {} : value;
  if (!plain(obj)) throw coded("invalid_option", "options must be an object");
  checkKeys(obj, KNOWN, "");
  out[0] = number(obj, "refreshLeadSeconds", 0, 86400);
  out[1] = number(obj, "leewaySeconds", 0, 3600);
  out[2] = number(obj, "requestTimeoutMs", 1, 600000);
  const retry = obj.retry;
  out[3] = out[4] = out[5] = NaN;
  if (retry !== undefined) {
    if (!plain(retry)) throw invalid("retry", "an object { base, cap, budget }");
    checkKeys(retry, ["base", "cap", "budget"], "retry.");
    out[3] = number(retry, "base", 1, 3600000);
    out[4] = number(retry, "cap", 1, 86400000);
    out[5] = number(retry, "budget", 1, 1000);
  }
  out[8] = boolean(obj, "crossTab", 1);
  const idle = (out[6] = number(obj, "idleTimeoutSeconds", 1, 31536000));
  const warning = (out[7] = number(obj, "idleWarningSeconds", 0, 86400));
  if (warning === warning) {
    if (idle !== idle) throw invalid("idleWarningSeconds", "given with idleTimeoutSeconds");
    if (warning >= idle) throw invalid("idleWarningSeconds", "less than idleTimeoutSeconds");
  }
  out[9] = boolean(obj, "exposeToken", 0);
  out[10] = boolean(obj, "replayNonIdempotent", 0);
  out[11] = boolean(obj, "dpop", 0);
  out[12] = +(obj.verify !== undefined);
  const loc = globalThis.location;
  const urls = ENDPOINTS.map(([name, fallback]) => endpoint(obj, name, fallback, loc && loc.href));
  return urls.concat(origins(obj, loc ? loc.origin : "")).join("\n");
}
