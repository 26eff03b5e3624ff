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

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

fn lock_manager() -> Option<(JsValue, Function)> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    if locks.is_undefined() || locks.is_null() {
        return None;
    }
    let request = Reflect::get(&locks, &"request".into())
        .ok()?
        .dyn_into()
        .ok()?;
    Some((locks, request))
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
    let Some((locks, request)) = lock_manager() else {
        JsFuture::from(work(false)).await?;
        return Ok(());
    };
    let mut work = Some(work);
    let mut contended = false;
    // `auth.fetch`'s response callback's signature (two arguments, the second unused): one
    // set of invoke shims for both (README "Size", fifth pass).
    let callback = Closure::<dyn FnMut(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
        move |lock: JsValue, _: JsValue| {
            if lock.is_null() {
                // `ifAvailable`, and another tab holds it.
                contended = true;
                return Ok(JsValue::NULL);
            }
            Ok(match work.take() {
                Some(work) => work(contended).into(),
                None => JsValue::UNDEFINED,
            })
        },
    );
    // `steal` and `ifAvailable` are refused together.
    let mut key = if steal { "steal" } else { "ifAvailable" };
    let mut value: &JsValue = &JsValue::TRUE;
    let mut queued = steal;
    loop {
        let options = Object::new();
        Reflect::set(&options, &key.into(), value)?;
        let held: Promise = request
            .call3(
                &locks,
                &name.into(),
                &options,
                callback.as_ref().unchecked_ref(),
            )?
            .dyn_into()?;
        let result = JsFuture::from(held).await;
        // `null` only when another tab held it (the work resolves `undefined`): wait in the
        // queue, which `signal` may abort.
        if queued || !matches!(&result, Ok(v) if v.is_null()) {
            drop(callback);
            return result.map(|_| ());
        }
        (key, value, queued) = ("signal", signal.as_ref(), true);
    }
}
