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
    /// `navigator.locks.request` with `ifAvailable` first, then queued with `signal` (or at
    /// once with `steal`), `work` called with whether the grant was contended.
    #[wasm_bindgen(catch, js_name = withLock)]
    fn js_with_lock(
        name: &str,
        signal: &AbortSignal,
        steal: bool,
        work: &Function,
    ) -> Result<Promise, JsValue>;
}

/// Runs `work` while holding the exclusive lock `name`; runs it without a lock where the Web
/// Locks API is missing. `work` is told whether the grant was contended (another tab held the
/// lock when this one asked). Returns `Err` when `signal` aborted the wait for the lock. With
/// `steal`, the lock is granted at once, released by whoever held it (`signal` is then not
/// used: the API refuses the two together, and there is no wait to abort); a takeover is not
/// contended, its holder has stopped.
pub(crate) async fn with_lock(
    name: &str,
    signal: &AbortSignal,
    steal: bool,
    work: impl FnOnce(bool) -> Promise + 'static,
) -> Result<(), JsValue> {
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
    let held = js_with_lock(name, signal, steal, callback.as_ref().unchecked_ref())?;
    let result = JsFuture::from(held).await;
    drop(callback);
    result.map(|_| ())
}
