//! `auth.fetch`: the global `fetch` with `Authorization: Bearer` for the allowlisted origins,
//! a refresh first when the token is about to expire, and after a 401 one refresh and a replay
//! when the request may be repeated (an idempotent method, or `replayNonIdempotent`).
//!
//! The common case (a fresh bearer token) is synchronous: the request is built, the header
//! set on it, `fetch` called and its promise returned with one `then` that looks at the
//! status; only a 401, a refresh to wait for or a DPoP proof to sign goes through an `async`
//! task (each of those is a promise hop and a crossing more, about as much again as the rest).

use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use token_manager_core::protocol::idempotent_method;
use token_manager_core::session::Renewal;
use token_manager_core::ErrorCode;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, Response};
use zeroize::Zeroize;

use crate::dpop::SendError;
use crate::driver::Driver;
use crate::error::{coded, dpop_failed, invalid_argument};
use crate::http;

/// The origin of a request's URL as `URL.origin` gives it. A `Request`'s URL is serialized by
/// the URL parser (lower-case host, no default port, never credentials), so for `http:` and
/// `https:` the origin is everything before the path; any other scheme asks `URL`.
fn origin_matches(origins: &[String], url: &str) -> bool {
    let after = ["https://", "http://"]
        .iter()
        .find_map(|s| url.strip_prefix(s).map(|rest| url.len() - rest.len()));
    if let Some(start) = after {
        let end = url[start..].find('/').map_or(url.len(), |i| start + i);
        let origin = &url[..end];
        if !origin.contains('@') {
            return origins.iter().any(|o| o == origin);
        }
    }
    web_sys::Url::new(url).is_ok_and(|u| origins.iter().any(|o| *o == u.origin()))
}

/// Sets `Authorization: Bearer <token>` on `request`, or `DPoP <token>` and the `proof`. The
/// request is one `auth.fetch` built itself (`new Request(input, init)`), never the app's.
fn attach(request: &Request, token: &str, proof: Option<&str>) -> Result<(), JsValue> {
    let headers = request.headers();
    let scheme = if proof.is_some() { "DPoP " } else { "Bearer " };
    headers.set("Authorization", &[scheme, token].concat())?;
    if let Some(proof) = proof {
        crate::dpop::set_proof(&headers, proof)?;
    }
    Ok(())
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
        attach(&request, token, None)?;
        return http::fetch(&request).await;
    };
    // The body may be needed twice (a nonce retry): each attempt sends a copy.
    let (method, url) = (request.method(), request.url());
    d.send(driver, &key, &method, &url, Some(token), &|proof| {
        let copy = request.clone()?;
        attach(&copy, token, Some(proof))?;
        Ok(copy)
    })
    .await
    .map_err(|e| match e {
        SendError::Fetch(e) => e,
        SendError::Proof => dpop_failed(),
    })
}

#[wasm_bindgen]
extern "C" {
    /// A promise and a function, with the two calls the fast path makes on them (js-sys's own
    /// `then` and `bind` take typed closures).
    type Thenable;
    #[wasm_bindgen(method, js_name = then)]
    fn then_call(this: &Thenable, on_fulfilled: &Function) -> Promise;
    type Bindable;
    #[wasm_bindgen(method, js_name = bind)]
    fn bind_one(this: &Bindable, this_arg: &JsValue, a: &JsValue) -> Function;
}

fn not_authenticated() -> JsValue {
    coded(
        ErrorCode::NotAuthenticated,
        "no valid access token; sign in first",
    )
}

/// `auth.fetch(input, init)`: the promise of the response.
pub(crate) fn authorized_fetch(driver: &Rc<Driver>, input: &JsValue, init: &JsValue) -> Promise {
    start(driver, input, init).unwrap_or_else(|e| Promise::reject(&e))
}

fn start(driver: &Rc<Driver>, input: &JsValue, init: &JsValue) -> Result<Promise, JsValue> {
    // `new Request(input, init)`, exactly as `fetch` itself would build it.
    let request = http::new_request(input, init).map_err(|_| {
        invalid_argument("fetch(input, init) arguments do not make a valid Request")
    })?;
    // Only allowlisted origins ever see the token; an explicit Authorization header is the
    // application's choice and is left alone.
    let headers = request.headers();
    if !origin_matches(&driver.opts.api_origins, &request.url()) || headers.has("Authorization")? {
        return http::fetch_promise(&request);
    }
    // (Reflect.get on a non-object throws: the guard keeps exceptions off the hot path.)
    let stream_body = init.is_object()
        && Reflect::get(init, &"body".into())
            .ok()
            .is_some_and(|b| b.is_instance_of::<web_sys::ReadableStream>());
    // A POST the API refused with 401 may still have been acted on (a proxy or a handler that
    // checks the token late): replaying it could pay twice. Only idempotent methods are
    // replayed unless the application says its non-idempotent endpoints are safe to repeat.
    let replayable =
        !stream_body && (driver.opts.replay_non_idempotent || idempotent_method(&request.method()));
    if driver.input(|s, now| s.renew_on_read(now)) == Renewal::Pending {
        let stage = Stage::Wait {
            request,
            replayable,
        };
        return Ok(later(driver.clone(), stage));
    }
    attempt(driver, request, replayable)
}

/// Sends `request` with the token held now. A bearer token is set on the request and
/// `fetch`'s promise returned with [`Driver::on_response`] after it; a DPoP-bound one needs
/// a proof signed first, in [`finish`].
fn attempt(driver: &Rc<Driver>, request: Request, replayable: bool) -> Result<Promise, JsValue> {
    let mut token = driver.token_string().ok_or_else(not_authenticated)?;
    #[cfg(feature = "dpop")]
    if driver.token_is_dpop() {
        let spare = if replayable {
            request.clone().ok()
        } else {
            None
        };
        let stage = Stage::Dpop {
            request,
            spare,
            token,
        };
        return Ok(later(driver.clone(), stage));
    }
    attach(&request, &token, None)?;
    token.zeroize();
    // The spare copy carries the header too: a replay overwrites it with the new token.
    let spare = if replayable {
        request.clone().map_or(JsValue::UNDEFINED, Into::into)
    } else {
        JsValue::UNDEFINED
    };
    let sent = http::fetch_promise(&request)?;
    let callback = driver.on_response();
    let callback = callback
        .unchecked_ref::<Bindable>()
        .bind_one(&JsValue::NULL, &js_sys::Array::of2(&request, &spare));
    Ok(sent.unchecked_ref::<Thenable>().then_call(&callback))
}

impl Driver {
    /// The one `then` callback of every fast-path request, `(sent, spare, response)`: a
    /// response other than 401 is passed on as it is; a 401 goes to [`finish`].
    fn on_response(&self) -> Function {
        self.on_response
            .get_or_init(|| {
                let me = self.me.clone();
                Closure::<dyn FnMut(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
                    move |pair: JsValue, response: JsValue| {
                        let pair: js_sys::Array = pair.unchecked_into();
                        let (sent, spare) = (pair.get(0), pair.get(1));
                        let response: Response = response.dyn_into()?;
                        let Some(driver) = me.upgrade().filter(|_| response.status() == 401) else {
                            return Ok(response.into());
                        };
                        // The refused token, read back from the request that carried it.
                        let sent: Request = sent.unchecked_into();
                        let mut header = sent.headers().get("Authorization")?.unwrap_or_default();
                        let token = header.strip_prefix("Bearer ").unwrap_or("").to_owned();
                        header.zeroize();
                        let stage = Stage::Refused {
                            response,
                            spare: spare.dyn_into().ok(),
                            token,
                        };
                        Ok(later(driver, stage).into())
                    },
                )
                .into_js_value()
                .unchecked_into()
            })
            .clone()
    }
}

/// Where the `async` part of `auth.fetch` starts: a refresh to wait for before the token is
/// read, a DPoP proof to sign, or a 401 to a request that carried `token`.
enum Stage {
    Wait {
        request: Request,
        replayable: bool,
    },
    #[cfg(feature = "dpop")]
    Dpop {
        request: Request,
        spare: Option<Request>,
        token: String,
    },
    Refused {
        response: Response,
        spare: Option<Request>,
        token: String,
    },
}

/// The `async` part of `auth.fetch`, one future type for every stage.
fn later(driver: Rc<Driver>, stage: Stage) -> Promise {
    crate::promise(async move { finish(&driver, stage).await })
}

/// Waits for the refresh, or sends with a proof; after a 401 to a request that carried
/// `token`: one refresh and one replay of the `spare` copy when there is one and the refresh
/// gave another token, the 401 itself otherwise.
async fn finish(driver: &Rc<Driver>, stage: Stage) -> Result<JsValue, JsValue> {
    let (response, spare, mut token) = match stage {
        Stage::Wait {
            request,
            replayable,
        } => {
            let _ = driver.settled().await;
            return JsFuture::from(attempt(driver, request, replayable)?).await;
        }
        #[cfg(feature = "dpop")]
        Stage::Dpop {
            request,
            spare,
            mut token,
        } => {
            let response = send(driver, request, &token, true).await?;
            if response.status() != 401 {
                token.zeroize();
                return Ok(response.into());
            }
            (response, spare, token)
        }
        Stage::Refused {
            response,
            spare,
            token,
        } => (response, spare, token),
    };
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
        return Ok(response.into());
    };
    if driver.input(|s, now| s.force_refresh(now)) == Renewal::Pending {
        let _ = driver.settled().await;
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
            let answer = send(driver, spare, &fresh, dpop).await;
            fresh.zeroize();
            answer.map(Into::into)
        }
        None => Ok(response.into()),
    }
}
