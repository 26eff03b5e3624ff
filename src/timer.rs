//! A one-shot timer cancelled on drop (after gloo-timers' `Timeout`), whose closure has the
//! listeners' signature so no other set of invoke shims is linked (README "Size", fifth pass).

use js_sys::Function;
use wasm_bindgen::prelude::*;

use crate::listener::Callback;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout, catch)]
    fn set_timeout(handler: &Function, timeout: i32) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

/// `callback` runs once after `millis` unless this is dropped first.
#[must_use = "dropping the timeout cancels it"]
pub(crate) struct Timeout {
    id: JsValue,
    _closure: Closure<Callback>,
}

impl Timeout {
    pub(crate) fn new(millis: u32, callback: impl FnOnce() + 'static) -> Self {
        let mut callback = Some(callback);
        let closure = Closure::<Callback>::new(move |_| {
            if let Some(f) = callback.take() {
                f();
            }
            Ok(())
        });
        let id = set_timeout(closure.as_ref().unchecked_ref(), millis as i32).unwrap_throw();
        Self {
            id,
            _closure: closure,
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}
