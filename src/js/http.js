// Requests to the auth endpoints (src/http.rs), in JavaScript: the request and the JSON of an
// answer are built and read here in one call each, instead of a `Headers` and a `RequestInit`
// filled a setter at a time and a body read in two awaits.

import { coded } from "./error.js";
import { secure } from "./options.js";

/** A credentialed JSON `POST` to an auth endpoint with the CSRF header (`csrf: csrfValue`,
 * core::protocol's) the server requires. `body`: JSON text, so a password in it never enters
 * wasm memory; `bearer`, when given, goes in `Authorization` (as `DPoP` with a `proof`, which
 * goes in the `DPoP` header: RFC 9449 §7.1). */
export function authRequest(url, body, bearer, signal, proof, csrf, csrfValue) {
  const headers = new Headers();
  headers.set(csrf, csrfValue);
  headers.set("Accept", "application/json");
  if (body !== undefined) headers.set("Content-Type", "application/json");
  if (bearer !== undefined) headers.set("Authorization", (proof === undefined ? "Bearer " : "DPoP ") + bearer);
  if (proof !== undefined) headers.set("DPoP", proof);
  return new Request(url, { method: "POST", credentials: "include", cache: "no-store", headers, body, signal });
}

/** What the wasm needs of an auth endpoint's answer, read at once:
 * `[status, Date, Retry-After, JSON body, error, token_type, access_token, expires_in,
 * id_token_claims as JSON text]` (src/http.rs `Answer` reads them by index; what each means,
 * and whether the answer is usable, is decided there). The body is parsed with the browser's
 * own `JSON.parse`; undefined when it is not JSON, could not be read, or is longer than `max`
 * characters, and so are its members then. */
export function answer(response, max) {
  const headers = response.headers;
  const head = [response.status, headers.get("Date"), headers.get("Retry-After")];
  return response.text()
    .then((text) => (text.length > max ? undefined : JSON.parse(text)))
    .catch(() => undefined)
    .then((body) => {
      const o = body !== null && typeof body === "object" ? body : {};
      const claims = o.id_token_claims;
      head.push(body, o.error, o.token_type, o.access_token, o.expires_in,
        claims !== null && typeof claims === "object" ? JSON.stringify(claims) : undefined);
      return head;
    });
}

/** `fetch(request)` (the global at each call), then its `answer`. */
export function post(request, max) {
  return fetch(request).then((response) => answer(response, max));
}

/** What `logout()` resolves to, from the logout answer's JSON: `{ endSessionUrl }` when the
 * server (its upstream mode) answered the identity provider's end-session URL and that is an
 * absolute `https:` or loopback `http:` URL (nothing is resolved against another), `{}`
 * otherwise. Only the server's answer is used, never anything of the page's. */
export function logoutResult(body) {
  let url;
  try {
    url = new URL(body.end_session_url);
  } catch {
    // not a URL (or no body): no end-session URL
  }
  return url && typeof body.end_session_url === "string" && secure(url) ? { endSessionUrl: url.href } : {};
}

/** The login request's body: the credentials as JSON text, serialized here so that the
 * password never enters wasm memory. Throws `invalid_argument` for anything but a plain
 * object (an array, `null`, a string) or one `JSON.stringify` refuses (a cycle, a BigInt). */
export function loginBody(credentials) {
  if (credentials === null || typeof credentials !== "object" || Array.isArray(credentials)) {
    throw coded("invalid_argument", "login(credentials) needs an object such as { username, password }");
  }
  try {
    return JSON.stringify(credentials);
  } catch {
    throw coded("invalid_argument", "credentials must be JSON-serializable");
  }
}
