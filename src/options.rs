//! The `TokenManager` constructor options: read from a plain object, every value checked.
//!
//! A typo in an option name or a value of the wrong type is a constructor error with a code
//! (`unknown_option`, `invalid_option`, `insecure_endpoint`), never a silently ignored setting:
//! a misspelt `apiOrigins` would otherwise widen or narrow where the token goes.

#[cfg(feature = "verify")]
use std::rc::Rc;
use std::time::Duration;

use js_sys::{Array, Object, Reflect};
use token_manager_core::endpoint::loopback_host;
use token_manager_core::message::push_decimal;
use token_manager_core::schedule::Config;
use token_manager_core::ErrorCode;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::coded;
use crate::verify::Verifier;

const KNOWN: [&str; 16] = [
    "verify",
    "dpop",
    "loginUrl",
    "authorizeUrl",
    "refreshUrl",
    "logoutUrl",
    "apiOrigins",
    "refreshLeadSeconds",
    "leewaySeconds",
    "requestTimeoutMs",
    "crossTab",
    "exposeToken",
    "replayNonIdempotent",
    "retry",
    "idleTimeoutSeconds",
    "idleWarningSeconds",
];
/// The endpoint options and their defaults; [`Options`]' accessors index this order.
const ENDPOINTS: [(&str, &str); 4] = [
    ("loginUrl", "/auth/login"),
    ("refreshUrl", "/auth/refresh"),
    ("logoutUrl", "/auth/logout"),
    // `loginWithRedirect()`'s target: the server's authorize endpoint (upstream mode).
    ("authorizeUrl", "/auth/authorize"),
];
const KNOWN_RETRY: [&str; 3] = ["base", "cap", "budget"];

/// How the options hold the verifier: shared with the `verify` feature; without it the
/// uninhabited stub itself, so that `Option<VerifierHandle>` is always `None` to the compiler
/// too and every verification branch of the driver is compiled out (README "Size", sixth pass).
#[cfg(feature = "verify")]
pub(crate) type VerifierHandle = Rc<Verifier>;
#[cfg(not(feature = "verify"))]
pub(crate) type VerifierHandle = Verifier;

/// Validated options.
#[derive(Debug)]
pub(crate) struct Options {
    /// The endpoints' absolute URLs, in the order of [`ENDPOINTS`] (one `Vec`: an early
    /// error return drops one value, not four strings).
    pub endpoints: Vec<String>,
    /// Serialized origins (`https://api.example.com`) the token may be sent to.
    pub api_origins: Vec<String>,
    pub cross_tab: bool,
    pub expose_token: bool,
    /// `fetch` may replay a `POST`/`PATCH` (any method RFC 9110 does not call idempotent)
    /// after a 401; off by default.
    pub replay_non_idempotent: bool,
    pub config: Config,
    /// Signature verification, when the `verify` option is given.
    pub verifier: Option<VerifierHandle>,
    /// DPoP-bound tokens (`dpop: true`; refused by a build without the `dpop` feature).
    pub dpop: bool,
}

pub(crate) fn invalid(name: &str, expected: &str) -> JsValue {
    coded(
        ErrorCode::InvalidOption,
        &["option `", name, "` must be ", expected].concat(),
    )
}

pub(crate) fn get(obj: &JsValue, name: &str) -> Result<Option<JsValue>, JsValue> {
    let v = Reflect::get(obj, &JsValue::from_str(name))?;
    Ok((!v.is_undefined()).then_some(v))
}

fn check_keys(obj: &JsValue, known: &[&str], prefix: &str) -> Result<(), JsValue> {
    for key in Object::keys(obj.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(coded(
                ErrorCode::UnknownOption,
                &["unknown option `", prefix, &key, "`"].concat(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn plain_object(v: &JsValue) -> bool {
    v.is_object() && !Array::is_array(v) && !v.is_function()
}

// Bounds are whole numbers so the message writes integers (`push_decimal`): formatting an
// f64 would link 15 KB of float-printing code into the package.
fn number(obj: &JsValue, name: &str, min: u32, max: u32) -> Result<Option<f64>, JsValue> {
    match get(obj, name)? {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n.is_finite() && (f64::from(min)..=f64::from(max)).contains(&n) => {
                Ok(Some(n))
            }
            _ => {
                let mut expected = String::from("a number from ");
                push_decimal(&mut expected, min.into());
                expected.push_str(" to ");
                push_decimal(&mut expected, max.into());
                Err(invalid(name, &expected))
            }
        },
    }
}

fn boolean(obj: &JsValue, name: &str, default: bool) -> Result<bool, JsValue> {
    match get(obj, name)? {
        None => Ok(default),
        Some(v) => v.as_bool().ok_or_else(|| invalid(name, "a boolean")),
    }
}

/// A string member of the page's `location` (windows and workers): `href` or `origin`.
pub(crate) fn location(name: &str) -> String {
    let loc = Reflect::get(&js_sys::global(), &"location".into()).unwrap_or(JsValue::UNDEFINED);
    Reflect::get(&loc, &name.into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// True for `https:` URLs and for `http:` on a loopback host (exactly `localhost`, `[::1]`
/// or `127.x.y.z`), where browsers treat the origin as potentially trustworthy (and `Secure`
/// cookies work).
pub(crate) fn secure_or_loopback(url: &web_sys::Url) -> bool {
    match url.protocol().as_str() {
        "https:" => true,
        "http:" => loopback_host(&url.hostname()),
        _ => false,
    }
}

fn endpoint(obj: &JsValue, name: &str, default: &str, base: &str) -> Result<String, JsValue> {
    // The default is borrowed, not copied into a `String` first.
    let raw = match get(obj, name)? {
        None => None,
        Some(v) => Some(v.as_string().ok_or_else(|| invalid(name, "a URL string"))?),
    };
    let url = web_sys::Url::new_with_base(raw.as_deref().unwrap_or(default), base)
        .map_err(|_| invalid(name, "a valid URL"))?;
    if !secure_or_loopback(&url) {
        return Err(coded(
            ErrorCode::InsecureEndpoint,
            &[
                "option `",
                name,
                "` must be an https: URL or a loopback http: URL",
            ]
            .concat(),
        ));
    }
    Ok(url.href())
}

fn origins(obj: &JsValue) -> Result<Vec<String>, JsValue> {
    const EXPECTED: &str = "an array of origins such as \"https://api.example.com\"";
    let Some(v) = get(obj, "apiOrigins")? else {
        return Ok(vec![location("origin")]);
    };
    if !Array::is_array(&v) {
        return Err(invalid("apiOrigins", EXPECTED));
    }
    let mut out = Vec::new();
    for item in Array::from(&v).iter() {
        let s = item
            .as_string()
            .ok_or_else(|| invalid("apiOrigins", EXPECTED))?;
        let url = web_sys::Url::new(&s).map_err(|_| invalid("apiOrigins", EXPECTED))?;
        // An origin, not a URL: a path, query, fragment or credentials would suggest a scope
        // the check does not enforce. The serialized URL of a bare origin is the origin and
        // `/`; any of those shows in it (an empty `?` or `#` only in the text given, looked
        // for byte by byte: no `char` pattern machinery in the wasm).
        let origin = url.origin();
        let bare = url.href() == [origin.as_str(), "/"].concat()
            && !s.bytes().any(|b| b == b'?' || b == b'#');
        if !bare || origin == "null" {
            return Err(invalid("apiOrigins", EXPECTED));
        }
        if !secure_or_loopback(&url) {
            return Err(coded(
                ErrorCode::InsecureEndpoint,
                "option `apiOrigins` may only list https: origins or loopback http: origins",
            ));
        }
        out.push(origin);
    }
    Ok(out)
}

impl Options {
    pub(crate) fn login_url(&self) -> &str {
        &self.endpoints[0]
    }
    pub(crate) fn refresh_url(&self) -> &str {
        &self.endpoints[1]
    }
    pub(crate) fn logout_url(&self) -> &str {
        &self.endpoints[2]
    }
    pub(crate) fn authorize_url(&self) -> &str {
        &self.endpoints[3]
    }

    /// Reads and checks the options object (`undefined` means all defaults).
    pub(crate) fn parse(value: &JsValue) -> Result<Self, JsValue> {
        let empty: JsValue;
        let obj = if value.is_undefined() || value.is_null() {
            empty = Object::new().into();
            &empty
        } else if plain_object(value) {
            value
        } else {
            return Err(coded(ErrorCode::InvalidOption, "options must be an object"));
        };
        check_keys(obj, &KNOWN, "")?;
        let mut config = Config::default();
        if let Some(s) = number(obj, "refreshLeadSeconds", 0, 86_400)? {
            config.refresh_lead_min = token_manager_core::schedule::duration_from_secs(s);
        }
        if let Some(s) = number(obj, "leewaySeconds", 0, 3_600)? {
            config.leeway = token_manager_core::schedule::duration_from_secs(s);
        }
        if let Some(ms) = number(obj, "requestTimeoutMs", 1, 600_000)? {
            config.request_timeout = Duration::from_millis(ms as u64);
        }
        if let Some(retry) = get(obj, "retry")? {
            if !plain_object(&retry) {
                return Err(invalid("retry", "an object { base, cap, budget }"));
            }
            check_keys(&retry, &KNOWN_RETRY, "retry.")?;
            if let Some(ms) = number(&retry, "base", 1, 3_600_000)? {
                config.retry_base = Duration::from_millis(ms as u64);
            }
            if let Some(ms) = number(&retry, "cap", 1, 86_400_000)? {
                config.retry_cap = Duration::from_millis(ms as u64);
            }
            if let Some(n) = number(&retry, "budget", 1, 1_000)? {
                config.refresh_budget = n as u32;
            }
            if config.retry_cap < config.retry_base {
                return Err(invalid("retry.cap", "at least retry.base"));
            }
        }
        let cross_tab = boolean(obj, "crossTab", true)?;
        if cross_tab {
            // A live lock holder lets go within its own request timeout; one that waits longer
            // has stopped (frozen, paused, crashed) and the lock is taken over.
            config.lock_timeout = Some(config.request_timeout + Duration::from_secs(1));
        } else {
            config.sibling_wait = None;
        }
        let idle = number(obj, "idleTimeoutSeconds", 1, 31_536_000)?;
        let warning = number(obj, "idleWarningSeconds", 0, 86_400)?;
        match (idle, warning) {
            (None, Some(_)) => {
                return Err(invalid(
                    "idleWarningSeconds",
                    "given with idleTimeoutSeconds",
                ))
            }
            (None, None) => {}
            (Some(idle), warning) => {
                let idle = token_manager_core::schedule::duration_from_secs(idle);
                let warning = match warning {
                    Some(s) => token_manager_core::schedule::duration_from_secs(s),
                    None => Duration::from_secs(60).min(idle / 2),
                };
                if warning >= idle {
                    return Err(invalid(
                        "idleWarningSeconds",
                        "less than idleTimeoutSeconds",
                    ));
                }
                config.idle_timeout = Some(idle);
                config.idle_warning = warning;
            }
        }
        // Every check that owns nothing comes first, the values that own strings last: an
        // early error return then has little to drop (README "Size", fifth pass).
        let expose_token = boolean(obj, "exposeToken", false)?;
        let replay_non_idempotent = boolean(obj, "replayNonIdempotent", false)?;
        let dpop = crate::dpop::check_option(boolean(obj, "dpop", false)?)?;
        // `from` is the identity without the `verify` feature (`VerifierHandle`).
        #[allow(clippy::useless_conversion)]
        let verifier = match get(obj, "verify")? {
            None => None,
            Some(v) => Some(Verifier::from_options(&v, false).map(VerifierHandle::from)?),
        };
        let href = location("href");
        let mut endpoints = Vec::with_capacity(ENDPOINTS.len());
        for (name, default) in ENDPOINTS {
            endpoints.push(endpoint(obj, name, default, &href)?);
        }
        Ok(Options {
            endpoints,
            api_origins: origins(obj)?,
            cross_tab,
            expose_token,
            replay_non_idempotent,
            dpop,
            config,
            verifier,
        })
    }
}
