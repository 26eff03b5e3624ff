//! The cross-tab refresh lock: `navigator.locks.request(name, callback)` (Web Locks API).
//!
//! The lock is held until the promise the callback returns settles, so a tab that refreshes
//! keeps it until it has announced the new token; tabs queued behind it then find the token
//! adopted and skip the endpoint. A tab that waited `lock_timeout` takes the lock over
//! (`steal: true`): its holder has stopped (frozen, paused in a debugger, crashed).

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
/// Locks API is missing. Returns `Err` when `signal` aborted the wait for the lock. With
/// `steal`, the lock is granted at once, released by whoever held it (`signal` is then not
/// used: the API refuses the two together, and there is no wait to abort).
pub(crate) async fn with_lock(
    name: &str,
    signal: &AbortSignal,
    steal: bool,
    work: impl FnOnce() -> Promise + 'static,
) -> Result<(), JsValue> {
    let Some((locks, request)) = lock_manager() else {
        JsFuture::from(work()).await?;
        return Ok(());
    };
    let options = Object::new();
    if steal {
        Reflect::set(&options, &"steal".into(), &JsValue::TRUE)?;
    } else {
        Reflect::set(&options, &"signal".into(), signal)?;
    }
    let mut work = Some(work);
    // `auth.fetch`'s response callback's signature (two arguments, the second unused): one
    // set of invoke shims for both (README "Size", fifth pass).
    let callback = Closure::<dyn FnMut(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
        move |_lock: JsValue, _: JsValue| {
            Ok(match work.take() {
                Some(work) => work().into(),
                None => Promise::resolve(&JsValue::UNDEFINED).into(),
            })
        },
    );
    let held: Promise = request
        .call3(
            &locks,
            &name.into(),
            &options,
            callback.as_ref().unchecked_ref(),
        )?
        .dyn_into()?;
    let result = JsFuture::from(held).await;
    drop(callback);
    result.map(|_| ())
}
