//! Page lifecycle and user activity: the listeners that wake the session (online, pageshow,
//! focus, the page becoming visible) and, with `idleTimeoutSeconds` only, count activity.
//! They are [`Listener`]s held by the driver, so they are removed when the manager is freed.

use std::rc::Weak;

use js_sys::Reflect;
use token_manager_core::session::Wake;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::EventTarget;

use crate::driver::Driver;
use crate::listener::Listener;

/// User activity is forwarded to the session at most this often (a key or pointer storm
/// costs one clock read per event).
const ACTIVITY_THROTTLE_MS: u64 = 1000;

impl Driver {
    /// Attaches the lifecycle listeners, and the activity listeners when the idle timeout is on.
    pub(crate) fn listen_to_the_page(&self) {
        let mut listeners = lifecycle_listeners(&self.me);
        if self.opts.config.idle_timeout.is_some() {
            listeners.extend(activity_listeners(&self.me));
        }
        *self.listeners.borrow_mut() = listeners;
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
        self.input(|s, now| s.handle_activity(now));
    }
}

fn page_hidden() -> bool {
    Reflect::get(&js_sys::global(), &"document".into())
        .and_then(|d| Reflect::get(&d, &"visibilityState".into()))
        .ok()
        .and_then(|v| v.as_string())
        .is_some_and(|v| v != "visible")
}

/// Listens for `kind` on `target` (capture phase when asked) with `me`'s driver.
fn listen(
    out: &mut Vec<Listener>,
    me: &Weak<Driver>,
    target: &JsValue,
    kind: &'static str,
    capture: bool,
    on: impl Fn(&Driver) + 'static,
) {
    let Some(target) = target.dyn_ref::<EventTarget>() else {
        return;
    };
    let me = me.clone();
    out.extend(Listener::with_capture(target, kind, capture, move |_| {
        if let Some(driver) = me.upgrade() {
            on(&driver);
        }
    }));
}

fn lifecycle_listeners(me: &Weak<Driver>) -> Vec<Listener> {
    let global = js_sys::global();
    let mut out = Vec::new();
    let wake = |wake: Wake| {
        move |driver: &Driver| {
            if wake != Wake::Visible || !page_hidden() {
                driver.input(|s, now| s.handle_wake(now, wake));
            }
        }
    };
    listen(&mut out, me, &global, "online", false, wake(Wake::Online));
    listen(
        &mut out,
        me,
        &global,
        "pageshow",
        false,
        wake(Wake::PageShow),
    );
    listen(&mut out, me, &global, "focus", false, wake(Wake::Focus));
    if let Ok(document) = Reflect::get(&global, &"document".into()) {
        listen(
            &mut out,
            me,
            &document,
            "visibilitychange",
            false,
            wake(Wake::Visible),
        );
    }
    out
}

/// With `idleTimeoutSeconds` only: pointer and key presses and the page becoming visible are
/// user activity. Capture phase, so a page handler that stops propagation cannot hide them.
fn activity_listeners(me: &Weak<Driver>) -> Vec<Listener> {
    let global = js_sys::global();
    let mut out = Vec::new();
    listen(&mut out, me, &global, "pointerdown", true, Driver::activity);
    listen(&mut out, me, &global, "keydown", true, Driver::activity);
    if let Ok(document) = Reflect::get(&global, &"document".into()) {
        listen(
            &mut out,
            me,
            &document,
            "visibilitychange",
            true,
            |driver| {
                if !page_hidden() {
                    driver.activity();
                }
            },
        );
    }
    out
}
