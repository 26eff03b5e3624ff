//! The session's events as `CustomEvent`s on the manager's `EventTarget`, and the claims
//! object they invalidate.

use js_sys::Function;
use token_manager_core::message::Message;
use token_manager_core::session::{Event, LogoutOrigin};
use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

use crate::clock;
use crate::driver::Driver;

#[wasm_bindgen(module = "/src/js/events.js")]
extern "C" {
    /// Dispatches event `index` (the order of `EVENTS` in src/js/events.js: statechange,
    /// login, refresh, logout, idle, active, expired, error) with its detail's values.
    #[wasm_bindgen(catch)]
    fn emit(
        target: &EventTarget,
        index: u32,
        a: JsValue,
        b: JsValue,
        c: JsValue,
        d: JsValue,
    ) -> Result<(), JsValue>;
    /// `addEventListener` (`add`) or `removeEventListener` for one of the manager's event
    /// types; `invalid_argument` for any other.
    #[wasm_bindgen(catch)]
    pub(crate) fn listen(
        target: &EventTarget,
        kind: &JsValue,
        listener: &Function,
        add: bool,
    ) -> Result<(), JsValue>;
}

impl Driver {
    /// Dispatches one session event to the application's listeners.
    pub(crate) fn dispatch(&self, event: Event) {
        // The events that change the token drop the claims object (once, here).
        if matches!(
            event,
            Event::SignedIn { .. }
                | Event::Refreshed { .. }
                | Event::SignedOut { .. }
                | Event::Expired { .. }
        ) {
            self.claims.take();
        }
        let u = || JsValue::UNDEFINED;
        let (index, a, b, c, d) = match event {
            Event::StateChanged { from, to } => {
                (0, from.as_str().into(), to.as_str().into(), u(), u())
            }
            Event::SignedIn { source } => (1, source.as_str().into(), u(), u(), u()),
            Event::Refreshed { source } => (2, source.as_str().into(), u(), u(), u()),
            Event::SignedOut { origin, reason } => {
                // The key goes with the session; a new session makes a new one.
                if let Some(d) = &self.dpop {
                    d.forget();
                }
                let origin = match origin {
                    LogoutOrigin::Local => "local",
                    LogoutOrigin::OtherTab => "otherTab",
                };
                (3, origin.into(), reason.as_str().into(), u(), u())
            }
            Event::IdleWarning { logout_at } => {
                let at = self.to_wall(logout_at);
                let in_ms = (at - clock::wall().as_millis() as f64).max(0.0);
                (4, at.into(), in_ms.into(), u(), u())
            }
            Event::Active => (5, u(), u(), u(), u()),
            Event::Expired { reason, retrying } => {
                (6, reason.as_str().into(), retrying.into(), u(), u())
            }
            Event::RefreshFailed {
                error,
                retry_in,
                token_valid,
            } => {
                let retry_in =
                    retry_in.map_or(JsValue::NULL, |d| (d.as_millis() as u64 as f64).into());
                let (code, message) = (error.code().into(), error.message().into());
                *self.last_error.borrow_mut() = Some(error);
                (7, code, message, retry_in, token_valid.into())
            }
        };
        // Exceptions thrown by listeners are reported by the browser, not propagated here.
        let _ = emit(&self.target, index, a, b, c, d);
    }

    /// The current token's claims as a frozen object, the same one until the token changes
    /// (the events above drop it), or `null`.
    pub(crate) fn claims_object(&self) -> JsValue {
        if let Some(cached) = self.claims.borrow().as_ref() {
            return cached.clone();
        }
        let Some(json) = self.session.borrow().claims().map(|c| c.to_json()) else {
            return JsValue::NULL;
        };
        let value = crate::decode::parse_frozen(&json).unwrap_or(JsValue::NULL);
        *self.claims.borrow_mut() = Some(value.clone());
        value
    }
}
