//! `auth.fetch`: the global `fetch` with `Authorization: Bearer` for the allowlisted origins,
//! a refresh first when the token is about to expire, and after a 401 one refresh and a replay
//! when the request may be repeated (an idempotent method, or `replayNonIdempotent`).
//!
//! The common case (a fresh bearer token) is synchronous: the request is built, the header
//! set on it, `fetch` called and its promise returned with one `then` that looks at the
//! status; only a 401, a refresh to wait for or a DPoP proof to sign goes through an `async`
//! task (each of those is a promise hop and a crossing more, about as much again as the rest).

use std::rc::Rc;

use js_sys::{Function, Promise};
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

#[wasm_bindgen(module = "/src/js/fetch.js")]
extern "C" {
    /// The request work of `auth.fetch` in JavaScript (src/js/fetch.js), one per manager:
    /// one crossing to build and check the request, one to send it with the header.
    pub(crate) type Fetcher;
    #[wasm_bindgen(constructor)]
    fn new(origins: &js_sys::Array, replay_all: bool, refused: &Function) -> Fetcher;
    /// The `Request` when it is one the token goes on; the promise of `fetch` when it is not
    /// (another origin, or the app's own `Authorization`); `null` for bad arguments.
    #[wasm_bindgen(method, catch)]
    fn prepare(this: &Fetcher, input: &JsValue, init: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn send(
        this: &Fetcher,
        request: &Request,
        init: &JsValue,
        header: &str,
    ) -> Result<Promise, JsValue>;
    /// Whether the request may be sent again after a 401 (an idempotent method or
    /// `replayNonIdempotent`, and a body that is not a stream).
    fn replayable(request: &Request, init: &JsValue, all: bool) -> bool;
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
    // Only allowlisted origins ever see the token; an explicit Authorization header is the
    // application's choice and is left alone: those are sent by `prepare` itself.
    let prepared = driver
        .fetcher()
        .prepare(input, init)
        .map_err(http::no_fetch)?;
    let request = match prepared.dyn_into::<Request>() {
        Ok(request) => request,
        Err(sent) if sent.is_null() => {
            return Err(invalid_argument(
                "fetch(input, init) arguments do not make a valid Request",
            ))
        }
        Err(sent) => return Ok(sent.unchecked_into()),
    };
    let (renewal, now) = driver.input(|s, now| (s.renew_on_read(now), now));
    if renewal == Renewal::Pending {
        let stage = Stage::Wait {
            request,
            init: init.clone(),
        };
        return Ok(later(driver.clone(), stage));
    }
    attempt(driver, request, init, now)
}

/// Sends `request` with the token the session offers at `now`. A bearer token goes in the
/// header and the request out through [`Fetcher`]'s `send`, whose `then` passes every
/// response but a 401 on as it is; a DPoP-bound one needs a proof signed first, in [`finish`].
fn attempt(
    driver: &Rc<Driver>,
    request: Request,
    init: &JsValue,
    now: token_manager_core::Timestamp,
) -> Result<Promise, JsValue> {
    // Read once, at the time the renewal was decided on: no second clock read. The session is
    // borrowed only here: `send` calls the global `fetch`, which may be the app's own.
    let session = driver.session.borrow();
    let held = session.token(now).ok_or_else(not_authenticated)?;
    #[cfg(feature = "dpop")]
    if held.is_dpop() && driver.dpop.is_some() {
        let token = held.expose_secret().to_owned();
        drop(session);
        let spare = if replayable(&request, init, driver.opts.replay_non_idempotent) {
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
    let mut header = ["Bearer ", held.expose_secret()].concat();
    drop(session);
    let sent = driver.fetcher().send(&request, init, &header);
    header.zeroize();
    sent.map_err(http::no_fetch)
}

impl Driver {
    /// This manager's [`Fetcher`]: its allowlist as a JS array, its replay option, and the one
    /// callback every request refused with 401 goes to, `([sent, spare], response)`.
    fn fetcher(&self) -> &Fetcher {
        self.fetcher.get_or_init(|| {
            let origins: js_sys::Array = self
                .opts
                .api_origins
                .iter()
                .map(|o| JsValue::from_str(o))
                .collect();
            let me = self.me.clone();
            let refused = Closure::<dyn FnMut(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
                move |pair: JsValue, response: JsValue| {
                    let pair: js_sys::Array = pair.unchecked_into();
                    let (sent, spare) = (pair.get(0), pair.get(1));
                    let response: Response = response.dyn_into()?;
                    let Some(driver) = me.upgrade() else {
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
            .into_js_value();
            Fetcher::new(
                &origins,
                self.opts.replay_non_idempotent,
                refused.unchecked_ref(),
            )
        })
    }
}

/// Where the `async` part of `auth.fetch` starts: a refresh to wait for before the token is
/// read, a DPoP proof to sign, or a 401 to a request that carried `token`.
enum Stage {
    Wait {
        request: Request,
        init: JsValue,
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
        Stage::Wait { request, init } => {
            let _ = driver.settled().await;
            let now = driver.now();
            return JsFuture::from(attempt(driver, request, &init, now)?).await;
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
