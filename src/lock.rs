//! The cross-tab refresh lock: `navigator.locks.request(name, callback)` (Web Locks API).
//!
//! The lock is held until the promise the callback returns settles, so a tab that refreshes
//! keeps it until it has announced the new token; tabs queued behind it then find the token
//! adopted and skip the endpoint. A tab that waited `lock_timeout` takes the lock over
//! (`steal: true`): its holder has stopped (frozen, paused in a debugger, crashed).
//!
//! A tab first asks with `ifAvailable` (the callback gets `null` when another tab holds the
//! lock) and queues only then, so its work learns whether the grant was *contended*: the
//! holder's announcement may then still be on its way (it comes over the channel, the grant
//! through the lock manager, and nothing orders the two).

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

#[wasm_bindgen(module = "/src/js/lock.js")]
extern "C" {
    /// `navigator.locks.request` with `ifAvailable` first, then queued with `wait`; stolen
    /// with `signal` when `wait` was aborted and the attempt was not; without a lock when the
    /// API refused. `work` is called at most once, with whether the grant was contended, and
    /// the promise settles once the promise `work` returned has (src/js/lock.js).
    #[wasm_bindgen(js_name = lockedAttempt)]
    fn locked_attempt(
        name: &str,
        wait: &AbortSignal,
        signal: &AbortSignal,
        work: &Function,
    ) -> Promise;
}

/// Runs one attempt's `work` under the exclusive lock `name` (see [`locked_attempt`]), and
/// resolves once it is over. `work` is told whether the grant was contended (another tab held
/// the lock when this one asked). A takeover (`steal`) is not contended: its holder has
/// stopped. Where the Web Locks API is missing, `work` runs without a lock.
pub(crate) async fn run_locked(
    name: &str,
    wait: &AbortSignal,
    signal: &AbortSignal,
    work: impl FnOnce(bool) -> Promise + 'static,
) {
    let mut work = Some(work);
    // `auth.fetch`'s response callback's signature (two arguments, the second unused): one
    // set of invoke shims for both (README "Size", fifth pass).
    let callback = Closure::<dyn FnMut(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
        move |contended: JsValue, _: JsValue| {
            Ok(match work.take() {
                Some(work) => work(contended.is_truthy()).into(),
                None => JsValue::UNDEFINED,
            })
        },
    );
    let done = locked_attempt(name, wait, signal, callback.as_ref().unchecked_ref());
    let _ = JsFuture::from(done).await;
    drop(callback);
}
