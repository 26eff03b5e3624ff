//! The cross-tab channel: a same-origin `BroadcastChannel` on which tabs share a new token,
//! ask for one on page load, announce a logout (and why), and share user activity (idle timeout).
//!
//! Messages are small plain objects with a version; anything else on the channel is ignored.

use js_sys::{Object, Reflect};
use token_manager_core::session::{Announcement, LogoutReason};
use token_manager_core::{AccessToken, Timestamp};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

use crate::listener::Listener;

const VERSION: f64 = 1.0;

/// What a sibling tab said.
pub(crate) enum Message {
    /// A token, and with a DPoP-bound one the key it is bound to (`{ privateKey, x, y }`).
    Token(Announcement, Option<JsValue>),
    Logout(LogoutReason),
    Ask,
    /// The user was active at this instant (the sender's clock).
    Activity(Timestamp),
}

/// The channel of one manager; closed when dropped.
pub(crate) struct Channel {
    channel: BroadcastChannel,
    _listener: Listener,
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &key.into(), value);
}

fn message(kind: &str) -> Object {
    let obj = Object::new();
    set(&obj, "v", &VERSION.into());
    set(&obj, "type", &kind.into());
    obj
}

impl Channel {
    /// Opens the channel `name`, or `None` where `BroadcastChannel` does not exist.
    pub(crate) fn open(name: &str, mut on_message: impl FnMut(Message) + 'static) -> Option<Self> {
        let exists = Reflect::has(&js_sys::global(), &"BroadcastChannel".into()).unwrap_or(false);
        if !exists {
            return None;
        }
        let channel = BroadcastChannel::new(name).ok()?;
        let listener = Listener::new(&channel, "message", move |event| {
            // Only this closure holds the channel, so only the browser dispatches on it, and
            // its `message` events are `MessageEvent`s: no `instanceof` check (an import).
            if let Some(m) = parse(&event.unchecked_into::<MessageEvent>().data()) {
                on_message(m);
            }
        })?;
        Some(Self {
            channel,
            _listener: listener,
        })
    }

    /// `key`: the `CryptoKey` (structured-cloned, still non-extractable) and public half of a
    /// DPoP-bound token.
    pub(crate) fn announce(&self, a: &Announcement, key: Option<&JsValue>) {
        let obj = message("token");
        set(&obj, "token", &a.token.expose_secret().into());
        if let Some(key) = key {
            set(&obj, "dpop", key);
        }
        set(
            &obj,
            "receivedAt",
            &(a.received_at.as_millis() as f64).into(),
        );
        set(
            &obj,
            "lifetimeMs",
            &(a.lifetime.as_millis() as u64 as f64).into(),
        );
        // An opaque token's claims (JSON text): the other tabs cannot read them off the token.
        if let Some(claims) = &a.claims {
            set(&obj, "claims", &claims.into());
        }
        let _ = self.channel.post_message(&obj);
    }

    pub(crate) fn logout(&self, reason: LogoutReason) {
        let obj = message("logout");
        set(&obj, "reason", &reason.as_str().into());
        let _ = self.channel.post_message(&obj);
    }

    pub(crate) fn activity(&self, at: Timestamp) {
        let obj = message("activity");
        set(&obj, "at", &(at.as_millis() as f64).into());
        let _ = self.channel.post_message(&obj);
    }

    pub(crate) fn ask(&self) {
        let _ = self.channel.post_message(&message("ask"));
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.channel.close();
    }
}

fn parse(data: &JsValue) -> Option<Message> {
    let get = |k: &str| Reflect::get(data, &k.into()).ok();
    if !data.is_object() || get("v")?.as_f64()? != VERSION {
        return None;
    }
    match get("type")?.as_string()?.as_str() {
        // A logout without a reason (or an unknown one) is the user's: the stricter reading
        // would keep a session another tab ended.
        "logout" => Some(Message::Logout(
            match get("reason").and_then(|r| r.as_string()).as_deref() {
                Some("idle") => LogoutReason::Idle,
                _ => LogoutReason::User,
            },
        )),
        "activity" => {
            let at = get("at")?.as_f64().filter(|v| v.is_finite() && *v >= 0.0)?;
            Some(Message::Activity(Timestamp::from_millis(at as u64)))
        }
        "ask" => Some(Message::Ask),
        "token" => {
            let token = get("token")?.as_string()?;
            let received_at = get("receivedAt")?
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0)?;
            let lifetime = get("lifetimeMs")?
                .as_f64()
                .filter(|v| v.is_finite() && *v > 0.0)?;
            let key = get("dpop").filter(|k| crate::dpop::ENABLED && k.is_object());
            Some(Message::Token(
                Announcement {
                    token: if key.is_some() {
                        AccessToken::dpop(token)
                    } else {
                        AccessToken::new(token)
                    },
                    received_at: Timestamp::from_millis(received_at as u64),
                    lifetime: std::time::Duration::from_millis(lifetime as u64),
                    claims: get("claims").and_then(|c| c.as_string()),
                },
                key,
            ))
        }
        _ => None,
    }
}
