//! Requests to the auth endpoints and the API, through the global `fetch`.
//!
//! `fetch` is looked up on the global object at each call rather than bound once, so it works
//! in windows and workers and a test (or a service-worker shim) can install its own.

use std::time::Duration;

use js_sys::{Function, Promise, Reflect};
use serde::Deserialize;
use token_manager_core::protocol::{CSRF_HEADER, CSRF_VALUE, MAX_BODY_BYTES};
use token_manager_core::retry_after::RetryAfter;
use token_manager_core::session::{
    classify_refresh_status, ReceivedToken, RefreshOutcome, TransientKind,
};
use token_manager_core::{AccessToken, Timestamp};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, Request, RequestCredentials, RequestInit, Response};
use zeroize::Zeroize;

use crate::error::coded;

/// Calls the global `fetch` with a request.
pub(crate) async fn fetch(request: &Request) -> Result<Response, JsValue> {
    let global = js_sys::global();
    let f: Function = Reflect::get(&global, &"fetch".into())?
        .dyn_into()
        .map_err(|_| coded("no_fetch", "this environment has no global fetch"))?;
    let promise: Promise = f.call1(&global, request)?.dyn_into()?;
    JsFuture::from(promise).await?.dyn_into()
}

/// A credentialed JSON `POST` to an auth endpoint, with the CSRF header the server requires.
/// `body` is JSON text (a JS string, so a password in it never enters wasm memory); `bearer`, when given, goes in `Authorization` (logout uses it so the
/// server can deny the access token).
pub(crate) fn auth_request(
    url: &str,
    body: Option<&JsValue>,
    bearer: Option<&str>,
    signal: Option<&AbortSignal>,
) -> Result<Request, JsValue> {
    let headers = Headers::new()?;
    headers.set(CSRF_HEADER, CSRF_VALUE)?;
    headers.set("Accept", "application/json")?;
    if body.is_some() {
        headers.set("Content-Type", "application/json")?;
    }
    if let Some(token) = bearer {
        headers.set("Authorization", &format!("Bearer {token}"))?;
    }
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_credentials(RequestCredentials::Include);
    init.set_cache(web_sys::RequestCache::NoStore);
    init.set_headers(&headers);
    if let Some(body) = body {
        init.set_body(body);
    }
    if let Some(signal) = signal {
        init.set_signal(Some(signal));
    }
    Request::new_with_str_and_init(url, &init)
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    token_type: String,
    expires_in: Option<f64>,
}

/// Reads a 200 answer of the login or refresh endpoint. `Err` carries nothing secret.
pub(crate) async fn read_token(response: &Response) -> Result<ReceivedToken, &'static str> {
    let text = JsFuture::from(response.text().map_err(|_| "invalid_response")?)
        .await
        .map_err(|_| "invalid_response")?;
    let mut text = text.as_string().ok_or("invalid_response")?;
    let parsed = if text.len() > MAX_BODY_BYTES {
        Err("invalid_response")
    } else {
        serde_json::from_str::<TokenBody>(&text).map_err(|_| "invalid_response")
    };
    // The body held the token: wipe this copy now rather than when the allocator reuses it.
    text.zeroize();
    let mut body = parsed?;
    if !body.token_type.eq_ignore_ascii_case("bearer") {
        body.access_token.zeroize();
        return Err("invalid_response");
    }
    let expires_in = body
        .expires_in
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e10)
        .map(Duration::from_secs_f64);
    Ok(ReceivedToken {
        token: AccessToken::new(body.access_token),
        expires_in,
    })
}

/// The `error` member of a JSON error body, if the answer has one.
pub(crate) async fn error_code(response: &Response) -> Option<String> {
    let text = JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()?;
    if text.len() > MAX_BODY_BYTES {
        return None;
    }
    #[derive(Deserialize)]
    struct ErrorOnly {
        error: String,
    }
    serde_json::from_str::<ErrorOnly>(&text)
        .ok()
        .map(|e| e.error)
}

/// Classifies a completed refresh answer.
pub(crate) async fn refresh_outcome(response: Response, now: Timestamp) -> RefreshOutcome {
    let status = response.status();
    if status == 200 {
        return match read_token(&response).await {
            Ok(token) => RefreshOutcome::Success(token),
            Err(_) => RefreshOutcome::Transient(TransientKind::InvalidResponse),
        };
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let retry_after = header("Retry-After")
        .and_then(|v| RetryAfter::parse(&v))
        .map(|ra| ra.delay(header("Date").as_deref(), now));
    classify_refresh_status(status, retry_after)
}
