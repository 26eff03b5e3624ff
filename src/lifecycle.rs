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
            listeners = activity_listeners(&self.me, listeners);
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
        self.session.borrow_mut().handle_activity(now);
        self.pump();
    }
}

fn page_hidden() -> bool {
    Reflect::get(&js_sys::global(), &"document".into())
        .and_then(|d| Reflect::get(&d, &"visibilityState".into()))
        .ok()
        .and_then(|v| v.as_string())
        .is_some_and(|v| v != "visible")
}

/// Collects the listeners that call into one driver.
struct Attach<'a> {
    me: &'a Weak<Driver>,
    /// Capture phase, so a page handler that stops propagation cannot hide the event.
    capture: bool,
    out: Vec<Listener>,
}

impl<'a> Attach<'a> {
    fn new(me: &'a Weak<Driver>, capture: bool) -> Self {
        Attach {
            me,
            capture,
            out: Vec::new(),
        }
    }

    /// Listens for `kind` on `target` (when it is an `EventTarget`) with the driver. (`f` is
    /// told the kind so one closure type serves several: each costs its own wasm shims.)
    fn on(
        &mut self,
        target: &JsValue,
        kind: &'static str,
        f: impl Fn(&Driver, &'static str) + 'static,
    ) {
        // `document` is absent in a worker. Any other object is taken as an `EventTarget`
        // without an `instanceof` import: one that is not fails `addEventListener`, which
        // `Listener` reports as `None`.
        if !target.is_object() {
            return;
        }
        let target = target.unchecked_ref::<EventTarget>();
        let me = self.me.clone();
        let listener = Listener::with_capture(target, kind, self.capture, move |_| {
            if let Some(driver) = me.upgrade() {
                f(&driver, kind);
            }
        });
        // `push`, not `extend` over the `Option`: no `extend_trusted` instance in the wasm.
        if let Some(listener) = listener {
            self.out.push(listener);
        }
    }
}

/// The global object and its `document` (absent in workers).
fn global_and_document() -> (JsValue, JsValue) {
    let global = js_sys::global();
    let document = Reflect::get(&global, &"document".into()).unwrap_or(JsValue::UNDEFINED);
    (global.into(), document)
}

fn lifecycle_listeners(me: &Weak<Driver>) -> Vec<Listener> {
    let (global, document) = global_and_document();
    let wake = |wake: Wake| {
        move |driver: &Driver, _: &'static str| {
            if wake != Wake::Visible || !page_hidden() {
                driver.input(|s, now| s.handle_wake(now, wake));
            }
        }
    };
    let mut attach = Attach::new(me, false);
    attach.on(&global, "online", wake(Wake::Online));
    attach.on(&global, "pageshow", wake(Wake::PageShow));
    attach.on(&global, "focus", wake(Wake::Focus));
    attach.on(&document, "visibilitychange", wake(Wake::Visible));
    attach.out
}

/// With `idleTimeoutSeconds` only: pointer and key presses and the page becoming visible are
/// user activity, seen in the capture phase.
fn activity_listeners(me: &Weak<Driver>, out: Vec<Listener>) -> Vec<Listener> {
    let (global, document) = global_and_document();
    // Added to the lifecycle listeners' `Vec` (no `extend` of one `Vec` by another).
    let mut attach = Attach {
        out,
        ..Attach::new(me, true)
    };
    let active = |driver: &Driver, kind: &'static str| {
        if kind != "visibilitychange" || !page_hidden() {
            driver.activity();
        }
    };
    attach.on(&global, "pointerdown", active);
    attach.on(&global, "keydown", active);
    attach.on(&document, "visibilitychange", active);
    attach.out
}
