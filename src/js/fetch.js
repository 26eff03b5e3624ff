// `auth.fetch`'s request work, in JavaScript (src/authorized_fetch.rs): the wasm calls
// `prepare` and `send` once each, instead of a dozen imports (new Request, url, headers, has,
// method, set, clone, fetch, then...) that cost more than the work itself when the code is
// cold between requests (README "Benchmarks", `auth.fetch`). The token never passes through
// here except as the header value `send` sets; what to attach and when stays in the wasm.
// `fetch` and `Request` are the globals at each call, so a test or a worker shim can install
// its own.

// RFC 9110's idempotent methods, as core::protocol::idempotent_method lists them: a request
// refused with 401 is replayed only with one of these (or with `replayNonIdempotent`).
const IDEMPOTENT = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];

/** Whether `request` (built from `init`) may be sent again after a 401. A stream body
 * cannot be replayed; a POST the API refused may still have been acted on. */
export function replayable(request, init, all) {
  const stream = typeof init === "object" && init !== null && init.body instanceof ReadableStream;
  return !stream && (all || IDEMPOTENT.includes(request.method.toUpperCase()));
}

/** `URL.origin` of a request's URL. A `Request`'s URL is serialized by the URL parser
 * (lower-case host, no default port, never credentials), so for `http:` and `https:` the
 * origin is everything before the path; any other scheme (`blob:`) asks `URL`. */
function originOf(url) {
  const start = url.startsWith("https://") ? 8 : url.startsWith("http://") ? 7 : 0;
  if (start) {
    const end = url.indexOf("/", start);
    const origin = end < 0 ? url : url.slice(0, end);
    if (!origin.includes("@")) return origin;
  }
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/** One per manager, made on its first `auth.fetch`: the allowlist (`apiOrigins`), the
 * replay option, and the wasm's callback for a 401 (one closure for every request). */
export class Fetcher {
  constructor(origins, replayAll, refused) {
    this.origins = origins;
    this.replayAll = replayAll;
    this.refused = refused;
  }

  /** `new Request(input, init)`, exactly as `fetch` itself would build it; `null` when the
   * arguments make none. A request to an origin outside the allowlist, or with an
   * `Authorization` header of the application's own, is sent as it is: the promise of its
   * response is returned. Otherwise the request, for the wasm to decide on the token. */
  prepare(input, init) {
    let request;
    try {
      request = new Request(input, init);
    } catch {
      return null;
    }
    if (!this.origins.includes(originOf(request.url)) || request.headers.has("Authorization")) {
      return fetch(request);
    }
    return request;
  }

  /** Sends `request` with `Authorization: <header>`. When it may be replayed, a copy is kept
   * (it carries the header too: a replay overwrites it with the new token); a 401 goes to the
   * wasm with `[sent, copy or null]`, any other response is passed on as it is. */
  send(request, init, header) {
    request.headers.set("Authorization", header);
    let spare = null;
    if (replayable(request, init, this.replayAll)) {
      try {
        spare = request.clone();
      } catch {
        // not replayed then (a body already read cannot be copied)
      }
    }
    return fetch(request).then((response) =>
      response.status === 401 ? this.refused([request, spare], response) : response);
  }
}
