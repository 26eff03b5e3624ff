//! The manager's ties to the page, in JavaScript (`src/js/page.js`): the lifecycle listeners
//! that wake the session (online, pageshow, focus, the page becoming visible), the activity
//! listeners of the idle timeout, the cross-tab `BroadcastChannel` and the one timer. They all
//! call one closure, [`Driver::on_page`], with a kind and a value; what each means to the
//! session is decided here. The [`PageHandle`] is the driver's: dropping it (on `free()`)
//! removes every listener, clears the timer and closes the channel.

use std::rc::Weak;

use js_sys::{Array, Function};
use token_manager_core::session::{Announcement, LogoutReason, Wake};
use token_manager_core::{AccessToken, Timestamp};
use wasm_bindgen::prelude::*;

use crate::driver::Driver;

#[wasm_bindgen(module = "/src/js/page.js")]
extern "C" {
    /// The listeners, the channel and the timer of one manager.
    pub(crate) type Page;
    /// Listens to the page (and for user activity with `activity`), and opens the channel
    /// `channel` when given and the environment has `BroadcastChannel`.
    #[wasm_bindgen(constructor)]
    fn new(callback: &Function, channel: Option<&str>, activity: bool) -> Page;
    /// Announces a token to the siblings (a no-op without a channel).
    #[wasm_bindgen(method)]
    pub(crate) fn announce(
        this: &Page,
        token: &str,
        received_at: f64,
        lifetime_ms: f64,
        claims: Option<&str>,
        dpop: Option<&JsValue>,
    );
    #[wasm_bindgen(method)]
    pub(crate) fn logout(this: &Page, reason: &str);
    #[wasm_bindgen(method)]
    pub(crate) fn activity(this: &Page, at: f64);
    #[wasm_bindgen(method)]
    pub(crate) fn ask(this: &Page);
    /// Arms the one timer (kind 9 after `ms`), replacing any armed before.
    #[wasm_bindgen(method)]
    pub(crate) fn arm(this: &Page, ms: u32);
    #[wasm_bindgen(method)]
    pub(crate) fn disarm(this: &Page);
    #[wasm_bindgen(method)]
    fn close(this: &Page);
}

/// The closure the page calls: `auth.fetch`'s response callback's signature (two arguments,
/// a `Result`), so no other set of invoke shims is linked (README "Size", fifth pass).
type PageCallback = dyn FnMut(JsValue, JsValue) -> Result<JsValue, JsValue>;

/// A [`Page`] and the closure it calls; dropping it closes the page first, so the closure is
/// never called after it is gone.
pub(crate) struct PageHandle {
    pub(crate) page: Page,
    _callback: Closure<PageCallback>,
}

impl PageHandle {
    /// The page of the driver `me` (`channel`: the channel's name, with `crossTab`).
    pub(crate) fn new(me: Weak<Driver>, channel: Option<&str>, activity: bool) -> Self {
        let callback = Closure::<PageCallback>::new(move |kind: JsValue, value: JsValue| {
            if let Some(driver) = me.upgrade() {
                driver.on_page(kind.as_f64().unwrap_or(-1.0), value);
            }
            Ok(JsValue::UNDEFINED)
        });
        let page = Page::new(callback.as_ref().unchecked_ref(), channel, activity);
        PageHandle {
            page,
            _callback: callback,
        }
    }
}

impl Drop for PageHandle {
    fn drop(&mut self) {
        self.page.close();
    }
}

impl std::fmt::Debug for PageHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageHandle")
    }
}

/// What a sibling tab said.
pub(crate) enum Message {
    /// A token, and with a DPoP-bound one the key it is bound to (`{ privateKey, x, y }`).
    Token(Announcement, Option<JsValue>),
    Logout(LogoutReason),
    Ask,
    /// The user was active at this instant (the sender's clock).
    Activity(Timestamp),
}

/// A sibling's token message, checked by the page (`[token, receivedAt, lifetimeMs, claims,
/// key]`).
fn token_message(value: &JsValue) -> Option<Message> {
    let fields: &Array = value.unchecked_ref();
    let token = fields.get(0).as_string()?;
    let received_at = fields.get(1).as_f64()?;
    let lifetime = fields.get(2).as_f64()?;
    let key = Some(fields.get(4)).filter(|k| crate::dpop::ENABLED && k.is_object());
    Some(Message::Token(
        Announcement {
            token: if key.is_some() {
                AccessToken::dpop(token)
            } else {
                AccessToken::new(token)
            },
            received_at: Timestamp::from_millis(received_at as u64),
            lifetime: std::time::Duration::from_millis(lifetime as u64),
            claims: fields.get(3).as_string(),
        },
        key,
    ))
}

/// User activity is forwarded to the session at most this often (a key or pointer storm
/// costs one clock read per event).
const ACTIVITY_THROTTLE_MS: u64 = 1000;

impl Driver {
    /// What the page reported (the kinds of `src/js/page.js`).
    pub(crate) fn on_page(&self, kind: f64, value: JsValue) {
        let wake = |wake: Wake| self.input(|s, now| s.handle_wake(now, wake));
        match kind as u32 {
            0 => wake(Wake::Online),
            1 => wake(Wake::PageShow),
            2 => wake(Wake::Focus),
            3 => wake(Wake::Visible),
            4 => self.activity(),
            5 => self.on_message(Message::Logout(if value.is_truthy() {
                LogoutReason::Idle
            } else {
                LogoutReason::User
            })),
            6 => {
                let at = value.as_f64().unwrap_or_default();
                self.on_message(Message::Activity(Timestamp::from_millis(at as u64)));
            }
            7 => self.on_message(Message::Ask),
            8 => {
                if let Some(m) = token_message(&value) {
                    self.on_message(m);
                }
            }
            9 => self.timer_fired(),
            _ => {}
        }
    }

    /// The user did something: fed to the session at most once per `ACTIVITY_THROTTLE_MS`.
    fn activity(&self) {
        let now = self.now();
        if self
            .activity_forwarded
            .get()
            .is_some_and(|last| now.as_millis() < last + ACTIVITY_THROTTLE_MS)
        {
            return;
        }
        self.activity_forwarded.set(Some(now.as_millis()));
        self.session.borrow_mut().handle_activity(now);
        self.pump();
    }
}
