//! An event listener that is removed when dropped (after gloo-events): the manager's page
//! lifecycle and channel listeners cannot outlive it.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsError, JsValue};
use web_sys::EventTarget;

/// A listener registered on `target` for `kind`; dropping it unregisters it.
#[must_use = "dropping the listener removes it"]
pub(crate) struct Listener {
    target: EventTarget,
    kind: &'static str,
    capture: bool,
    callback: Closure<Callback>,
}

/// A listener's closure: the event as a `JsValue` and a `Result`, the same signature as
/// wasm-bindgen-futures' own callbacks, so its invoke shims are linked once (README "Size",
/// fifth pass). It always returns `Ok`.
pub(crate) type Callback = dyn FnMut(JsValue) -> Result<(), JsError>;

impl Listener {
    /// Registers `callback`; `None` when `target` refuses it.
    pub(crate) fn new(
        target: &EventTarget,
        kind: &'static str,
        callback: impl FnMut(JsValue) + 'static,
    ) -> Option<Self> {
        Self::with_capture(target, kind, false, callback)
    }

    /// Registers `callback` in the capture phase when `capture` is set, so a handler of the
    /// page that stops propagation cannot hide the event.
    pub(crate) fn with_capture(
        target: &EventTarget,
        kind: &'static str,
        capture: bool,
        callback: impl FnMut(JsValue) + 'static,
    ) -> Option<Self> {
        let mut callback = callback;
        let callback = Closure::<Callback>::new(move |event| {
            callback(event);
            Ok(())
        });
        target
            .add_event_listener_with_callback_and_bool(
                kind,
                callback.as_ref().unchecked_ref(),
                capture,
            )
            .ok()?;
        Some(Self {
            target: target.clone(),
            kind,
            capture,
            callback,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback_and_bool(
            self.kind,
            self.callback.as_ref().unchecked_ref(),
            self.capture,
        );
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Listener({})", self.kind)
    }
}
