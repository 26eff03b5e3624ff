//! Requests to the auth endpoints and the API, through the global `fetch`.
//!
//! `fetch` is an import the glue resolves at each call (`fetch(request)`), not a reference
//! bound once, so it works in windows and workers and a test (or a service-worker shim) can
//! install its own.

use js_sys::Promise;
use token_manager_core::protocol::{CSRF_HEADER, CSRF_VALUE, MAX_BODY_BYTES};
use token_manager_core::retry_after::RetryAfter;
use token_manager_core::session::{
    classify_refresh_status, ReceivedToken, RefreshOutcome, TransientKind,
};
use token_manager_core::ErrorCode;
use token_manager_core::{AccessToken, Timestamp};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Request, Response};

use crate::error::coded;

/// Calls the global `fetch` with a request; `no_fetch` when there is none.
pub(crate) async fn fetch(request: &Request) -> Result<Response, JsValue> {
    JsFuture::from(fetch_promise(request)?).await?.dyn_into()
}

/// The promise the global `fetch` returns for `request`; `no_fetch` when there is none.
pub(crate) fn fetch_promise(request: &Request) -> Result<Promise, JsValue> {
    global_fetch(request).map_err(no_fetch)
}

/// What calling the global `fetch` threw: `no_fetch` when there is none, else as it is.
pub(crate) fn no_fetch(e: JsValue) -> JsValue {
    if e.is_instance_of::<js_sys::ReferenceError>() {
        coded(ErrorCode::NoFetch, "this environment has no global fetch")
    } else {
        e
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(request: &Request) -> Result<Promise, JsValue>;
}

#[wasm_bindgen(module = "/src/js/http.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = authRequest)]
    fn js_auth_request(
        url: &str,
        body: Option<&JsValue>,
        bearer: Option<&str>,
        signal: Option<&AbortSignal>,
        proof: Option<&str>,
        csrf: &str,
        csrf_value: &str,
    ) -> Result<Request, JsValue>;
    /// `fetch(request)`, then [`js_answer`] of the response.
    #[wasm_bindgen(catch, js_name = post)]
    fn js_post(request: &Request, max: u32) -> Result<Promise, JsValue>;
    /// `[status, Date, Retry-After, JSON body, error, token_type, access_token, expires_in,
    /// id_token_claims as JSON text]` of an answer, its body read.
    #[cfg(feature = "dpop")]
    #[wasm_bindgen(catch, js_name = answer)]
    fn js_answer(response: &Response, max: u32) -> Result<Promise, JsValue>;
    /// The login body: the credentials as JSON text; throws `invalid_argument` for anything
    /// but an object `JSON.stringify` accepts.
    #[wasm_bindgen(catch, js_name = loginBody)]
    pub(crate) fn login_body(credentials: &JsValue) -> Result<JsValue, JsValue>;
    /// `logout()`'s result from the logout answer's JSON (`undefined` when it had none):
    /// `{ endSessionUrl }` for an absolute `https:` or loopback `http:` URL, else `{}`.
    #[wasm_bindgen(catch, js_name = logoutResult)]
    fn js_logout_result(body: &JsValue) -> Result<JsValue, JsValue>;
}

/// A credentialed JSON `POST` to an auth endpoint, with the CSRF header the server requires.
/// `body` is JSON text (a JS string, so a password in it never enters wasm memory); `bearer`, when given, goes in `Authorization` (logout uses it so the
/// server can deny the access token); `proof`, when given, in `DPoP` (and the token then goes
/// as `Authorization: DPoP`: a DPoP-bound token is refused as a bearer token).
pub(crate) fn auth_request(
    url: &str,
    body: Option<&JsValue>,
    bearer: Option<&str>,
    signal: Option<&AbortSignal>,
    proof: Option<&str>,
) -> Result<Request, JsValue> {
    js_auth_request(url, body, bearer, signal, proof, CSRF_HEADER, CSRF_VALUE)
}

#[cfg(feature = "verify")]
#[wasm_bindgen]
extern "C" {
    /// The global `Request`, constructed with any input and init, as `fetch` accepts them.
    #[wasm_bindgen(js_name = Request)]
    type AnyRequest;
    #[wasm_bindgen(catch, constructor, js_class = "Request")]
    fn new(input: &JsValue, init: &JsValue) -> Result<AnyRequest, JsValue>;
}

/// `new Request(input, init)` (the JWKS request). The one binding of the constructor (web-sys has one per
/// argument type, each an import of its own).
#[cfg(feature = "verify")]
pub(crate) fn new_request(input: &JsValue, init: &JsValue) -> Result<Request, JsValue> {
    AnyRequest::new(input, init).map(JsCast::unchecked_into)
}

/// An auth endpoint's answer as the session needs it, read in JavaScript in one promise
/// (src/js/http.js): the status, the `Date` and `Retry-After` headers, the JSON body with
/// the browser's own `JSON.parse` (smaller than linking a second typed deserializer), refused
/// over [`MAX_BODY_BYTES`], and the members of it read here, each by its index. Every reader
/// below is then synchronous.
#[derive(Debug)]
pub(crate) struct Answer(js_sys::Array);

impl Answer {
    pub(crate) fn status(&self) -> u16 {
        self.0.get(0).as_f64().unwrap_or_default() as u16
    }

    /// The `Date` header, for the issuer's clock.
    pub(crate) fn date(&self) -> Option<String> {
        self.0.get(1).as_string()
    }

    pub(crate) fn retry_after(&self) -> Option<String> {
        self.0.get(2).as_string()
    }

    /// The `error` member of a JSON error body, if the answer has one.
    pub(crate) fn error_code(&self) -> Option<String> {
        self.0.get(4).as_string()
    }
}

/// Sends `request` with the global `fetch` and reads its [`Answer`]; `no_fetch` when there is
/// no `fetch`, the rejection when it failed.
pub(crate) async fn post(request: &Request) -> Result<Answer, JsValue> {
    let promise = js_post(request, MAX_BODY_BYTES as u32).map_err(no_fetch)?;
    Ok(Answer(JsFuture::from(promise).await?.unchecked_into()))
}

/// The [`Answer`] of a response already received (a DPoP exchange sends its own requests).
#[cfg(feature = "dpop")]
pub(crate) async fn answer(response: &Response) -> Result<Answer, JsValue> {
    let promise = js_answer(response, MAX_BODY_BYTES as u32)?;
    Ok(Answer(JsFuture::from(promise).await?.unchecked_into()))
}

/// Reads a 200 answer of the login or refresh endpoint. `Err` carries nothing secret.
/// `token_type` is `Bearer`, or `DPoP` when the request carried a proof (`dpop`).
pub(crate) fn read_token(answer: &Answer, dpop: bool) -> Result<ReceivedToken, ErrorCode> {
    let member = |i: u32| answer.0.get(i);
    let kind = member(5).as_string().unwrap_or_default();
    let bound = crate::dpop::ENABLED && dpop && kind.eq_ignore_ascii_case("dpop");
    let token = member(6).as_string();
    let (Some(token), true) = (token, bound || kind.eq_ignore_ascii_case("bearer")) else {
        return Err(ErrorCode::InvalidResponse);
    };
    let token = if bound {
        AccessToken::dpop(token)
    } else {
        AccessToken::new(token)
    };
    let expires_in = member(7)
        .as_f64()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e10)
        .map(token_manager_core::schedule::duration_from_secs);
    // The ID token's claims a token-mediating backend sends (its upstream mode), as JSON text
    // when the member is an object: the core uses them only for an access token that is not
    // a JWT, and checks them as strictly as a token's.
    Ok(ReceivedToken {
        token,
        expires_in,
        id_token_claims: member(8).as_string(),
    })
}

/// What `logout()` resolves to, from a 200 answer of the logout endpoint (src/js/http.js).
pub(crate) fn logout_result(answer: &Answer) -> JsValue {
    js_logout_result(&answer.0.get(3)).unwrap_or_else(|_| js_sys::Object::new().into())
}

/// Classifies a completed refresh answer (`dpop`: the request carried a proof).
pub(crate) fn refresh_outcome(answer: &Answer, now: Timestamp, dpop: bool) -> RefreshOutcome {
    let status = answer.status();
    if status == 200 {
        return match read_token(answer, dpop) {
            Ok(token) => RefreshOutcome::Success(token),
            Err(_) => RefreshOutcome::Transient(TransientKind::InvalidResponse),
        };
    }
    // The proof was refused (or still lacked the nonce after the one retry), not the cookie
    // (RFC 9449 §5, §8): the session is not over.
    if crate::dpop::ENABLED && dpop && status == 400 {
        let code = answer.error_code();
        if matches!(
            code.as_deref(),
            Some("invalid_dpop_proof" | "use_dpop_nonce")
        ) {
            return RefreshOutcome::Transient(TransientKind::DpopProof);
        }
    }
    let retry_after = answer
        .retry_after()
        .and_then(|v| RetryAfter::parse(&v))
        .map(|ra| ra.delay(answer.date().as_deref(), now));
    classify_refresh_status(status, retry_after)
}
