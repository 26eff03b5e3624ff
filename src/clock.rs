//! The browser's two clocks, combined by the core's [`Clock`] so neither sleep (which the
//! monotonic clock may not count) nor a wall clock set back (which `Date.now()` follows) can
//! make a token look younger than it is.

use js_sys::{Date, Reflect};
use token_manager_core::{Clock, Timestamp};
use wasm_bindgen::{JsCast, JsValue};

/// `performance.now()` where it exists (windows and workers), else the wall clock.
fn monotonic_ms() -> f64 {
    let global = js_sys::global();
    Reflect::get(&global, &JsValue::from_str("performance"))
        .ok()
        .and_then(|p| {
            let now = Reflect::get(&p, &JsValue::from_str("now")).ok()?;
            let now: js_sys::Function = now.dyn_into().ok()?;
            now.call0(&p).ok()?.as_f64()
        })
        .unwrap_or_else(Date::now)
}

fn to_ms(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

/// Reads the time for the session.
pub(crate) fn read(clock: &mut Clock) -> Timestamp {
    clock.now(to_ms(Date::now()), to_ms(monotonic_ms()))
}

/// Wall-clock time for display (`expiresAt()`), without advancing any clock state.
pub(crate) fn wall() -> Timestamp {
    Timestamp::from_millis(to_ms(Date::now()))
}
