//! Requests to the auth endpoints and the API, through the global `fetch`.
//!
//! `fetch` is an import the glue resolves at each call (`fetch(request)`), not a reference
//! bound once, so it works in windows and workers and a test (or a service-worker shim) can
//! install its own.

use js_sys::{Promise, Reflect};
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
    #[wasm_bindgen(catch, js_name = jsonBody)]
    fn js_json_body(response: &Response, max: u32) -> Result<Promise, JsValue>;
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

/// Parses a JSON body with the browser's own `JSON.parse` (smaller than linking a second
/// typed deserializer), refusing bodies over [`MAX_BODY_BYTES`] (src/js/http.js).
async fn json_body(response: &Response) -> Option<JsValue> {
    let promise = js_json_body(response, MAX_BODY_BYTES as u32).ok()?;
    let value = JsFuture::from(promise).await.ok()?;
    (!value.is_undefined()).then_some(value)
}

fn member(body: &JsValue, key: &str) -> JsValue {
    Reflect::get(body, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// Reads a 200 answer of the login or refresh endpoint. `Err` carries nothing secret.
/// `token_type` is `Bearer`, or `DPoP` when the request carried a proof (`dpop`).
pub(crate) async fn read_token(
    response: &Response,
    dpop: bool,
) -> Result<ReceivedToken, ErrorCode> {
    let body = json_body(response)
        .await
        .ok_or(ErrorCode::InvalidResponse)?;
    let kind = member(&body, "token_type").as_string().unwrap_or_default();
    let bound = crate::dpop::ENABLED && dpop && kind.eq_ignore_ascii_case("dpop");
    let token = member(&body, "access_token").as_string();
    let (Some(token), true) = (token, bound || kind.eq_ignore_ascii_case("bearer")) else {
        return Err(ErrorCode::InvalidResponse);
    };
    let token = if bound {
        AccessToken::dpop(token)
    } else {
        AccessToken::new(token)
    };
    let expires_in = member(&body, "expires_in")
        .as_f64()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e10)
        .map(token_manager_core::schedule::duration_from_secs);
    // The ID token's claims a token-mediating backend sends (its upstream mode): the core uses
    // them only for an access token that is not a JWT, and checks them as strictly as a token's.
    let id_token_claims = Some(member(&body, "id_token_claims"))
        .filter(JsValue::is_object)
        .and_then(|c| js_sys::JSON::stringify(&c).ok()?.as_string());
    Ok(ReceivedToken {
        token,
        expires_in,
        id_token_claims,
    })
}

/// The `error` member of a JSON error body, if the answer has one. (The future of
/// [`string_member`] itself, not an `async fn` around it: one state machine less in the wasm.)
pub(crate) fn error_code(
    response: &Response,
) -> impl std::future::Future<Output = Option<String>> + '_ {
    string_member(response, "error")
}

/// What `logout()` resolves to, from a 200 answer of the logout endpoint (src/js/http.js).
pub(crate) async fn logout_result(response: &Response) -> JsValue {
    let body = json_body(response).await.unwrap_or(JsValue::UNDEFINED);
    js_logout_result(&body).unwrap_or_else(|_| js_sys::Object::new().into())
}

/// A string member of a JSON answer, if it has one.
pub(crate) async fn string_member(response: &Response, key: &str) -> Option<String> {
    member(&json_body(response).await?, key).as_string()
}

/// Classifies a completed refresh answer (`dpop`: the request carried a proof).
pub(crate) async fn refresh_outcome(
    response: Response,
    now: Timestamp,
    dpop: bool,
) -> RefreshOutcome {
    let status = response.status();
    if status == 200 {
        return match read_token(&response, dpop).await {
            Ok(token) => RefreshOutcome::Success(token),
            Err(_) => RefreshOutcome::Transient(TransientKind::InvalidResponse),
        };
    }
    // The proof was refused (or still lacked the nonce after the one retry), not the cookie
    // (RFC 9449 §5, §8): the session is not over.
    if crate::dpop::ENABLED && dpop && status == 400 {
        let code = error_code(&response).await;
        if matches!(
            code.as_deref(),
            Some("invalid_dpop_proof" | "use_dpop_nonce")
        ) {
            return RefreshOutcome::Transient(TransientKind::DpopProof);
        }
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let retry_after = header("Retry-After")
        .and_then(|v| RetryAfter::parse(&v))
        .map(|ra| ra.delay(header("Date").as_deref(), now));
    classify_refresh_status(status, retry_after)
}
