// The kit's view of a backend: one request helper that sends what a browser page would send
// (Origin, the refresh cookie, the CSRF header), never follows redirects, and remembers every
// secret it meets so no printed line can contain one.

import { createHash } from "node:crypto";

/**
 * Every token, cookie value and password the run has seen. `scrub` replaces them in any text
 * about to be printed; tokens and cookies by their length and a hash prefix (they are 256-bit
 * random or signed, so a hash prefix reveals nothing), passwords by a fixed word (a hash of a
 * short password could be brute-forced).
 *
 * The kit never prints what it sends, so a password could only reach the output through a
 * backend echoing it: `unechoed` removes it from every answer as it arrives, whatever its
 * length. `scrub` replaces it again only when it has 8 characters or more; a shorter one
 * ("b") would otherwise mangle every word containing it.
 */
export class Secrets {
  #values = new Map();
  #password = "";

  /** Records `value` (a token or cookie); returns it. */
  token(value) {
    if (typeof value === "string" && value.length >= 4) this.#values.set(value, describeSecret(value));
    return value;
  }

  /** Records the password; returns it. */
  password(value) {
    if (typeof value !== "string" || !value) return value;
    this.#password = value;
    if (value.length >= 8) this.#values.set(value, "[password]");
    return value;
  }

  /** `text` from the backend with the password, if it echoed it, replaced. */
  unechoed(text) {
    return this.#password && text.includes(this.#password) ? text.split(this.#password).join("[password]") : text;
  }

  scrub(text) {
    let out = String(text);
    // Longest first, so a token containing a shorter secret is replaced whole.
    for (const [value, label] of [...this.#values].sort((a, b) => b[0].length - a[0].length)) {
      out = out.split(value).join(label);
    }
    return out;
  }
}

/** What the kit prints instead of a secret: its length and the start of its SHA-256. */
export function describeSecret(value) {
  const hash = createHash("sha256").update(value).digest("hex").slice(0, 8);
  return `<${value.length} chars, sha256:${hash}>`;
}

/** `Set-Cookie: name=value; Attr; Attr=v` as `{ name, value, attributes }`, attribute names lower-cased. */
export function parseSetCookie(line) {
  const [pair, ...rest] = line.split(";");
  const eq = pair.indexOf("=");
  const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
  const value = eq < 0 ? "" : pair.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
  const attributes = new Map();
  for (const part of rest) {
    const i = part.indexOf("=");
    const key = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
    if (key) attributes.set(key, i < 0 ? true : part.slice(i + 1).trim());
  }
  return { name, value, attributes };
}

/** A network failure or timeout: the backend could not be asked. */
export class NetworkError extends Error {
  name = "NetworkError";
}

/** Why `fetch` rejected: a timeout, the system error code (ECONNREFUSED…) or undici's message. */
export function networkReason(e, timeoutMs) {
  if (e?.name === "TimeoutError") return `no answer within ${timeoutMs} ms`;
  const cause = e?.cause;
  return cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? e?.message ?? String(e);
}

/** One answer, read in full. */
export class Answer {
  constructor({ method, path, status, headers, text, bytes, json, setCookies }) {
    Object.assign(this, { method, path, status, headers, text, bytes, json, setCookies });
  }

  header(name) {
    return this.headers.get(name);
  }

  /** The `Set-Cookie` lines for `name`, parsed. */
  cookies(name) {
    return this.setCookies.filter((c) => c.name === name);
  }

  /** `POST /auth/refresh → 401` */
  get label() {
    return `${this.method} ${this.path} → ${this.status}`;
  }
}

export class Backend {
  /**
   * @param {object} o
   * @param {URL} o.baseUrl the backend's base URL; paths are resolved against it
   * @param {string} o.origin the `Origin` a page of the application sends
   * @param {number} o.timeoutMs per request
   * @param {Secrets} o.secrets
   * @param {string} o.cookieName the refresh cookie's name
   */
  constructor({ baseUrl, origin, timeoutMs, secrets, cookieName }) {
    Object.assign(this, { baseUrl, origin, timeoutMs, secrets, cookieName });
    /** Every error answer (status >= 400) seen, for the error-body check. */
    this.errors = [];
  }

  url(path) {
    return new URL(path, this.baseUrl);
  }

  /**
   * Sends one request. `origin: null` sends no `Origin`; `cookie` is the refresh cookie's value;
   * `json` is serialized with `Content-Type: application/json`; `body` and `headers` are sent
   * as given (headers after the defaults, so a check can override any of them; a header set
   * to `undefined` is removed).
   */
  async request(method, path, { origin = this.origin, cookie, bearer, json, body, headers = {} } = {}) {
    const h = {};
    if (origin !== null) h.origin = origin;
    if (cookie !== undefined) h.cookie = `${this.cookieName}=${cookie}`;
    if (bearer !== undefined) h.authorization = `Bearer ${bearer}`;
    if (json !== undefined) {
      h["content-type"] = "application/json";
      body = JSON.stringify(json);
    }
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) delete h[k.toLowerCase()];
      else h[k.toLowerCase()] = v;
    }
    const url = this.url(path);
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: h,
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new NetworkError(`${method} ${url.pathname}: ${networkReason(e, this.timeoutMs)}`);
    }
    const raw = await response.text();
    const text = this.secrets.unechoed(raw);
    const received = new Headers();
    for (const [k, v] of response.headers) if (k !== "set-cookie") received.set(k, this.secrets.unechoed(v));
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed && typeof parsed.access_token === "string") this.secrets.token(parsed.access_token);
    const setCookies = response.headers.getSetCookie().map((line) => parseSetCookie(this.secrets.unechoed(line)));
    for (const c of setCookies) this.secrets.token(c.value);
    const answer = new Answer({ method, path: url.pathname, status: response.status, headers: received, text, bytes: Buffer.byteLength(raw), json: parsed, setCookies });
    if (answer.status >= 400) this.errors.push(answer);
    return answer;
  }
}
