//! `auth.fetch`: the global `fetch` with `Authorization: Bearer` for the allowlisted origins,
//! a refresh first when the token is about to expire, and after a 401 one refresh and a replay
//! when the request may be repeated (an idempotent method, or `replayNonIdempotent`).

use std::rc::Rc;

use js_sys::Reflect;
use token_manager_core::protocol::idempotent_method;
use token_manager_core::session::Renewal;
use token_manager_core::ErrorCode;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Headers, Request, Response};
use zeroize::Zeroize;

use crate::dpop::SendError;
use crate::driver::Driver;
use crate::error::{coded, dpop_failed, invalid_argument};
use crate::http;

impl Driver {
    fn allowed_origin(&self, url: &str) -> bool {
        web_sys::Url::new(url).is_ok_and(|u| self.opts.api_origins.iter().any(|o| *o == u.origin()))
    }
}

/// `request` with `Authorization: Bearer <token>`, or `DPoP <token>` and the `proof`.
fn with_token(request: &Request, token: &str, proof: Option<&str>) -> Result<Request, JsValue> {
    let headers = Headers::new_with_headers(&request.headers())?;
    let scheme = if proof.is_some() { "DPoP " } else { "Bearer " };
    headers.set("Authorization", &[scheme, token].concat())?;
    if let Some(proof) = proof {
        crate::dpop::set_proof(&headers, proof)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_headers(&headers);
    http::new_request(request, &init)
}

/// Sends `request` with the token: as a bearer token, or, when it is DPoP-bound, with a proof
/// (`ath` of the token) and one more proof if the server asks for its nonce.
async fn send(
    driver: &Driver,
    request: Request,
    token: &str,
    dpop: bool,
) -> Result<Response, JsValue> {
    let key = driver
        .dpop
        .as_ref()
        .filter(|_| dpop)
        .and_then(|d| Some((d, d.current()?)));
    let Some((d, key)) = key else {
        return http::fetch(&with_token(&request, token, None)?).await;
    };
    // The body may be needed twice (a nonce retry): each attempt sends a copy.
    let (method, url) = (request.method(), request.url());
    d.send(driver, &key, &method, &url, Some(token), &|proof| {
        with_token(&request.clone()?, token, Some(proof))
    })
    .await
    .map_err(|e| match e {
        SendError::Fetch(e) => e,
        SendError::Proof => dpop_failed(),
    })
}

/// `auth.fetch(input, init)`.
pub(crate) async fn authorized_fetch(
    driver: Rc<Driver>,
    input: JsValue,
    init: JsValue,
) -> Result<Response, JsValue> {
    // `new Request(input, init)`, exactly as `fetch` itself would build it.
    let request = http::new_request(&input, &init).map_err(|_| {
        invalid_argument("fetch(input, init) arguments do not make a valid Request")
    })?;
    // Only allowlisted origins ever see the token; an explicit Authorization header is the
    // application's choice and is left alone.
    if !driver.allowed_origin(&request.url()) || request.headers().has("Authorization")? {
        return http::fetch(&request).await;
    }
    if driver.input(|s, now| s.renew_on_read(now)) == Renewal::Pending {
        driver.settled().await;
    }
    let mut token = driver.token_string().ok_or_else(|| {
        coded(
            ErrorCode::NotAuthenticated,
            "no valid access token; sign in first",
        )
    })?;
    // (Reflect.get on a non-object throws: the guard keeps exceptions off the hot path.)
    let stream_body = init.is_object()
        && Reflect::get(&init, &"body".into())
            .ok()
            .is_some_and(|b| b.is_instance_of::<web_sys::ReadableStream>());
    // A POST the API refused with 401 may still have been acted on (a proxy or a handler that
    // checks the token late): replaying it could pay twice. Only idempotent methods are
    // replayed unless the application says its non-idempotent endpoints are safe to repeat.
    let replayable = driver.opts.replay_non_idempotent || idempotent_method(&request.method());
    let spare = if stream_body || !replayable {
        None
    } else {
        request.clone().ok()
    };
    let dpop = driver.token_is_dpop();
    let response = send(&driver, request, &token, dpop).await?;
    if response.status() != 401 {
        token.zeroize();
        return Ok(response);
    }
    let Some(spare) = spare else {
        // Not replayed: the app gets the 401, and the refused token is replaced meanwhile so
        // the app's own retry (if it decides one is safe) goes out with a fresh one — unless
        // it was replaced already while this request was under way.
        let mut held = driver.token_string();
        if held.as_deref() == Some(token.as_str()) {
            let _ = driver.input(|s, now| s.force_refresh(now));
        }
        if let Some(h) = held.as_mut() {
            h.zeroize();
        }
        token.zeroize();
        return Ok(response);
    };
    if driver.input(|s, now| s.force_refresh(now)) == Renewal::Pending {
        driver.settled().await;
    }
    let dpop = driver.token_is_dpop();
    let retried = match driver.token_string() {
        Some(fresh) if fresh != token => Some(fresh),
        Some(mut same) => {
            same.zeroize();
            None
        }
        None => None,
    };
    token.zeroize();
    match retried {
        Some(mut fresh) => {
            let answer = send(&driver, spare, &fresh, dpop).await;
            fresh.zeroize();
            answer
        }
        None => Ok(response),
    }
}
