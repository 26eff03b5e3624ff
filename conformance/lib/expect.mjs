// One check's record of what it expected and what it saw, and the shapes every check compares
// answers against (token response, refresh cookie, error body, JWT).

/** Thrown by a check that cannot run (a missing switch, a failed prerequisite). Never a pass. */
export class Skip extends Error {
  name = "Skip";
}

/** Collects the expectations of one check; the check fails if any of them does. */
export class Trial {
  expectations = [];

  /** Records one comparison; returns whether it held. */
  expect(what, expected, saw, ok) {
    this.expectations.push({ what, expected: String(expected), saw: String(saw), ok: Boolean(ok) });
    return Boolean(ok);
  }

  skip(reason) {
    throw new Skip(reason);
  }

  get ok() {
    return this.expectations.every((e) => e.ok);
  }
}

/** Every `error` code the contract defines (core/src/protocol.rs `error_code`). */
export const ERROR_CODES = [
  "invalid_grant",
  "invalid_request",
  "invalid_credentials",
  "forbidden_origin",
  "rate_limited",
  "invalid_token",
  "server_error",
  "temporarily_unavailable",
  "not_found",
  "method_not_allowed",
];

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Status and, for a JSON error body, its code and (shortened) description. */
export function describe(answer) {
  const body = answer.json;
  if (body && typeof body === "object" && "error" in body) {
    const text = typeof body.error_description === "string" ? `, "${shorten(body.error_description, 80)}"` : "";
    return `${answer.status} {"error":${JSON.stringify(body.error)}${text}}`;
  }
  const type = answer.header("content-type");
  return `${answer.status}${answer.bytes ? ` (${answer.bytes} bytes of ${type ?? "no content type"})` : ""}`;
}

function shorten(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Whether `body` is `{"error": CODE, "error_description": TEXT}` with a known CODE. */
export function errorBodyProblem(answer) {
  const type = answer.header("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) return `Content-Type is ${type || "missing"}`;
  const body = answer.json;
  if (!body || typeof body !== "object" || Array.isArray(body)) return "the body is not a JSON object";
  if (typeof body.error !== "string") return "no string member error";
  if (!ERROR_CODES.includes(body.error)) return `error ${JSON.stringify(body.error)} is not a documented code`;
  if (typeof body.error_description !== "string") return "no string member error_description";
  return null;
}

/** Expects `status` with an error body carrying `code`. */
export function expectError(t, answer, status, code, what = `${answer.method} ${answer.path}`) {
  const problem = errorBodyProblem(answer);
  return t.expect(
    what,
    `${status} {"error":"${code}","error_description":…}`,
    describe(answer) + (problem && answer.status === status ? ` (${problem})` : ""),
    answer.status === status && !problem && answer.json.error === code,
  );
}

/** Expects a 2xx of exactly `status`. */
export function expectStatus(t, answer, status, what = `${answer.method} ${answer.path}`) {
  return t.expect(what, String(status), describe(answer), answer.status === status);
}

/** The decoded header and payload of a compact JWS, or null. */
export function decodeJwt(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every((p) => BASE64URL.test(p)) || !parts[0] || !parts[1]) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
    const payload = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    if (!header || typeof header !== "object" || !payload || typeof payload !== "object") return null;
    return { header, payload, parts };
  } catch {
    return null;
  }
}

/** `Cache-Control` contains the `no-store` directive. */
export function hasNoStore(answer) {
  return /(^|,)\s*no-store\s*(,|$)/i.test(answer.header("cache-control") ?? "");
}

/** Expects a token response: 200, JSON, a JWT, `Bearer`, a positive `expires_in`, no-store. */
export function expectTokenResponse(t, answer, { secrets }) {
  if (!expectStatus(t, answer, 200)) return false;
  const type = answer.header("content-type") ?? "";
  t.expect("Content-Type", "application/json", type || "none", /^application\/json\b/i.test(type));
  const body = answer.json ?? {};
  const jwt = decodeJwt(body.access_token);
  t.expect(
    "access_token",
    "a JWT (three base64url segments, JSON header and payload)",
    typeof body.access_token === "string" ? `${jwt ? "a JWT" : "not a JWT"}, ${secrets.scrub(body.access_token)}` : "missing",
    jwt,
  );
  t.expect("token_type", '"Bearer"', JSON.stringify(body.token_type), typeof body.token_type === "string" && body.token_type.toLowerCase() === "bearer");
  t.expect(
    "expires_in",
    "a positive integer (seconds)",
    JSON.stringify(body.expires_in),
    Number.isInteger(body.expires_in) && body.expires_in > 0,
  );
  const leaked = ["refresh_token", "id_token"].filter((k) => k in body);
  t.expect("body members", "no refresh_token (it travels only in the HttpOnly cookie)", leaked.length ? `has ${leaked.join(", ")}` : "none of them", leaked.length === 0);
  t.expect("Cache-Control", "no-store", answer.header("cache-control") ?? "none", hasNoStore(answer));
  return t.ok;
}

/**
 * Expects one `Set-Cookie` of the refresh cookie with the attributes the contract requires:
 * `__Host-` prefix, HttpOnly, Secure, SameSite=Strict, Path=/, no Domain, a positive Max-Age.
 * Returns the cookie's value, or undefined.
 */
export function expectRefreshCookie(t, answer, { cookieName, secrets }) {
  const all = answer.cookies(cookieName);
  if (!t.expect(`Set-Cookie ${cookieName}`, "exactly one", all.length === 0 ? "none" : `${all.length}`, all.length === 1)) return undefined;
  const c = all[0];
  const a = c.attributes;
  const seen = [...a.entries()].map(([k, v]) => (v === true ? k : `${k}=${v}`)).join("; ");
  const problems = [];
  if (!cookieName.startsWith("__Host-")) problems.push("name without the __Host- prefix");
  if (!a.has("httponly")) problems.push("no HttpOnly");
  if (!a.has("secure")) problems.push("no Secure");
  if (String(a.get("samesite") ?? "").toLowerCase() !== "strict") problems.push("SameSite is not Strict");
  if (a.get("path") !== "/") problems.push("Path is not /");
  if (a.has("domain")) problems.push("has a Domain");
  const maxAge = Number(a.get("max-age"));
  if (!a.has("max-age") || !Number.isInteger(maxAge) || maxAge <= 0) problems.push("no positive Max-Age");
  if (!c.value) problems.push("empty value");
  t.expect(
    "cookie attributes",
    `${cookieName}=…; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age>0; no Domain`,
    `${c.name}=${c.value ? secrets.scrub(c.value) : ""}; ${seen}${problems.length ? ` (${problems.join(", ")})` : ""}`,
    problems.length === 0,
  );
  return c.value || undefined;
}
