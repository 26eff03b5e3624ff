//! The browser's two clocks, combined by the core's [`Clock`] so neither sleep (which the
//! monotonic clock may not count) nor a wall clock set back (which `Date.now()` follows) can
//! make a token look younger than it is.

use js_sys::Date;
use token_manager_core::{Clock, Timestamp};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// Resolved at call time in the glue: windows and workers have it; elsewhere it throws.
    #[wasm_bindgen(catch, js_namespace = performance, js_name = now)]
    fn performance_now() -> Result<f64, JsValue>;
}

/// `performance.now()` where it exists (windows and workers), else the wall clock.
fn monotonic_ms() -> f64 {
    performance_now().unwrap_or_else(|_| Date::now())
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
