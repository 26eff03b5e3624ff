//! The session's events as `CustomEvent`s on the manager's `EventTarget`, and the claims
//! object they invalidate.

use js_sys::{Object, Reflect};
use token_manager_core::message::Message;
use token_manager_core::session::{Event, LogoutOrigin};
use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit};

use crate::clock;
use crate::driver::Driver;
use crate::error::invalid_argument;

/// The event types `addEventListener` accepts.
const EVENT_TYPES: [&str; 8] = [
    "login",
    "refresh",
    "logout",
    "expired",
    "error",
    "statechange",
    "idle",
    "active",
];

/// `invalid_argument` unless `kind` is one of the manager's event types.
pub(crate) fn check_event_type(kind: &str) -> Result<(), JsValue> {
    if EVENT_TYPES.contains(&kind) {
        Ok(())
    } else {
        Err(invalid_argument(
            "event type must be login, refresh, logout, expired, error, statechange, idle or active",
        ))
    }
}

/// One property of an event's detail. (Not generic over the value: one copy in the wasm.)
fn set(obj: &Object, key: &str, value: JsValue) {
    let _ = Reflect::set(obj, &key.into(), &value);
}

impl Driver {
    /// Dispatches one session event to the application's listeners.
    pub(crate) fn dispatch(&self, event: Event) {
        let detail = Object::new();
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
        let kind = match event {
            Event::StateChanged { from, to } => {
                set(&detail, "from", JsValue::from(from.as_str()));
                set(&detail, "to", JsValue::from(to.as_str()));
                "statechange"
            }
            Event::SignedIn { source } => {
                set(&detail, "source", JsValue::from(source.as_str()));
                "login"
            }
            Event::Refreshed { source } => {
                set(&detail, "source", JsValue::from(source.as_str()));
                "refresh"
            }
            Event::SignedOut { origin, reason } => {
                // The key goes with the session; a new session makes a new one.
                if let Some(d) = &self.dpop {
                    d.forget();
                }
                set(
                    &detail,
                    "origin",
                    JsValue::from(match origin {
                        LogoutOrigin::Local => "local",
                        LogoutOrigin::OtherTab => "otherTab",
                    }),
                );
                set(&detail, "reason", JsValue::from(reason.as_str()));
                "logout"
            }
            Event::IdleWarning { logout_at } => {
                let at = self.to_wall(logout_at);
                set(&detail, "logoutAt", JsValue::from(at));
                set(
                    &detail,
                    "inMs",
                    JsValue::from((at - clock::wall().as_millis() as f64).max(0.0)),
                );
                "idle"
            }
            Event::Active => "active",
            Event::Expired { reason, retrying } => {
                set(&detail, "reason", JsValue::from(reason.as_str()));
                set(&detail, "retrying", JsValue::from(retrying));
                "expired"
            }
            Event::RefreshFailed {
                error,
                retry_in,
                token_valid,
            } => {
                set(&detail, "code", JsValue::from(error.code()));
                set(&detail, "message", JsValue::from(error.message()));
                set(
                    &detail,
                    "retryInMs",
                    retry_in.map_or(JsValue::NULL, |d| (d.as_millis() as u64 as f64).into()),
                );
                set(&detail, "tokenValid", JsValue::from(token_valid));
                *self.last_error.borrow_mut() = Some(error);
                "error"
            }
        };
        let init = CustomEventInit::new();
        init.set_detail(&detail);
        if let Ok(e) = CustomEvent::new_with_event_init_dict(kind, &init) {
            // Exceptions thrown by listeners are reported by the browser, not propagated here.
            let _ = self.target.dispatch_event(&e);
        }
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
