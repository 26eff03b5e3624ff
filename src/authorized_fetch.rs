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

use crate::driver::Driver;
use crate::error::{coded, invalid_argument};
use crate::http;

impl Driver {
    fn allowed_origin(&self, url: &str) -> bool {
        web_sys::Url::new(url).is_ok_and(|u| self.opts.api_origins.iter().any(|o| *o == u.origin()))
    }
}

fn with_bearer(request: &Request, token: &str) -> Result<Request, JsValue> {
    let headers = Headers::new_with_headers(&request.headers())?;
    headers.set("Authorization", &["Bearer ", token].concat())?;
    let init = web_sys::RequestInit::new();
    init.set_headers(&headers);
    http::new_request(request, &init)
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
    let first = with_bearer(&request, &token);
    let response = http::fetch(&first?).await?;
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
    let retried = match driver.token_string() {
        Some(mut fresh) if fresh != token => {
            let request = with_bearer(&spare, &fresh);
            fresh.zeroize();
            Some(request)
        }
        Some(mut same) => {
            same.zeroize();
            None
        }
        None => None,
    };
    token.zeroize();
    match retried {
        Some(request) => http::fetch(&request?).await,
        None => Ok(response),
    }
}
