//! The `TokenManager` constructor options: read from a plain object, every value checked.
//!
//! A typo in an option name or a value of the wrong type is a constructor error with a code
//! (`unknown_option`, `invalid_option`, `insecure_endpoint`), never a silently ignored setting:
//! a misspelt `apiOrigins` would otherwise widen or narrow where the token goes.

#[cfg(feature = "verify")]
use std::rc::Rc;
use std::time::Duration;

use js_sys::Reflect;
use token_manager_core::schedule::{duration_from_secs, Config};
use token_manager_core::ErrorCode;
use wasm_bindgen::prelude::*;

use crate::error::coded;
use crate::verify::Verifier;

/// The endpoints lead the URLs `parseOptions` returns, in this order; [`Options`]' accessors
/// index it (login, refresh, logout, authorize).
const ENDPOINTS: usize = 4;

#[wasm_bindgen(module = "/src/js/options.js")]
extern "C" {
    /// Checks the options object and returns the endpoints' absolute URLs, then the API
    /// origins, one per line (a serialized URL has no line break); the numbers and flags go
    /// into `out` (NaN: absent). Throws the `TokenManagerError` for the first bad option.
    /// (One string, not a `Vec<String>`: its conversion code is about 2 KB of wasm.)
    #[wasm_bindgen(catch, js_name = parseOptions)]
    fn parse_options(value: &JsValue, out: &mut [f64]) -> Result<String, JsValue>;
}

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

    /// Reads and checks the options object (`undefined` means all defaults): the checks and
    /// their messages are JavaScript's (`src/js/options.js`, one call); what the values mean
    /// is decided here.
    pub(crate) fn parse(value: &JsValue) -> Result<Self, JsValue> {
        let mut n = [0.0; 13];
        let lines = parse_options(value, &mut n)?;
        // Split by a byte loop: `str::split` links the pattern machinery.
        let mut urls = Vec::new();
        let mut start = 0;
        for (i, b) in lines.bytes().enumerate() {
            if b == b'\n' {
                urls.push(lines[start..i].to_owned());
                start = i + 1;
            }
        }
        urls.push(lines[start..].to_owned());
        let given = |i: usize| Some(n[i]).filter(|v| !v.is_nan());
        let mut config = Config::default();
        if let Some(s) = given(0) {
            config.refresh_lead_min = duration_from_secs(s);
        }
        if let Some(s) = given(1) {
            config.leeway = duration_from_secs(s);
        }
        if let Some(ms) = given(2) {
            config.request_timeout = Duration::from_millis(ms as u64);
        }
        if let Some(ms) = given(3) {
            config.retry_base = Duration::from_millis(ms as u64);
        }
        if let Some(ms) = given(4) {
            config.retry_cap = Duration::from_millis(ms as u64);
        }
        if let Some(budget) = given(5) {
            config.refresh_budget = budget as u32;
        }
        if config.retry_cap < config.retry_base {
            return Err(invalid("retry.cap", "at least retry.base"));
        }
        let cross_tab = n[8] == 1.0;
        if cross_tab {
            // A live lock holder lets go within its own request timeout; one that waits longer
            // has stopped (frozen, paused, crashed) and the lock is taken over.
            config.lock_timeout = Some(config.request_timeout + Duration::from_secs(1));
        } else {
            config.sibling_wait = None;
        }
        if let Some(idle) = given(6) {
            let idle = duration_from_secs(idle);
            // JavaScript checked that a given warning is shorter than the timeout.
            config.idle_warning = match given(7) {
                Some(s) => duration_from_secs(s),
                None => Duration::from_secs(60).min(idle / 2),
            };
            config.idle_timeout = Some(idle);
        }
        let dpop = crate::dpop::check_option(n[11] == 1.0)?;
        // `from` is the identity without the `verify` feature (`VerifierHandle`).
        #[allow(clippy::useless_conversion)]
        let verifier = match n[12] == 1.0 {
            false => None,
            true => {
                let v = Reflect::get(value, &"verify".into())?;
                Some(Verifier::from_options(&v, false).map(VerifierHandle::from)?)
            }
        };
        let api_origins = urls.split_off(ENDPOINTS);
        Ok(Options {
            endpoints: urls,
            api_origins,
            cross_tab,
            expose_token: n[9] == 1.0,
            replay_non_idempotent: n[10] == 1.0,
            dpop,
            config,
            verifier,
        })
    }
}
