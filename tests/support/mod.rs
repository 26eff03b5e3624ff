//! Helpers shared by the wasm-bindgen suites (`tests/browser.rs`, `tests/verify.rs`): calling the
//! manager through its JavaScript API as an application would, and a [`Guard`] that puts the
//! page back (fake server uninstalled, managers freed) when a test ends.
//!
//! A panic aborts the wasm test instead of unwinding, so `Drop` alone cannot clean up after a
//! failed test: the next [`Guard::new`] first frees what a previous test left behind.
#![allow(dead_code)] // each suite uses its own subset

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

/// A plain object of `pairs`.
pub fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

/// `JSON.parse(s)`.
pub fn json(s: &str) -> JsValue {
    JSON::parse(s).unwrap()
}

/// `o[k] = v`.
pub fn set(o: &JsValue, k: &str, v: JsValue) {
    Reflect::set(o, &k.into(), &v).unwrap();
}

/// `v[key]`.
pub fn prop(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

/// `m[method](...args)`.
pub fn call(m: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = Reflect::get(m, &method.into()).unwrap().into();
    f.apply(m, &args.iter().collect::<Array>())
}

/// `await m[method](...args)`.
pub async fn call_async(m: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    JsFuture::from(Promise::from(call(m, method, args)?)).await
}

thread_local! {
    /// Managers not freed yet, and the fake servers installed as `fetch` (newest last).
    static LIVE: RefCell<(Vec<JsValue>, Vec<JsValue>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Tracks a manager so that the test's [`Guard`] (or the next one) frees it.
pub fn track(m: JsValue) -> JsValue {
    LIVE.with(|l| l.borrow_mut().0.push(m.clone()));
    m
}

/// `m.free()`, once: a tracked manager is not freed again by the guard.
pub fn free(m: JsValue) {
    LIVE.with(|l| l.borrow_mut().0.retain(|x| !Object::is(x, &m)));
    let _ = call(&m, "free", &[]);
}

fn clean_up() {
    let (managers, servers) = LIVE.with(|l| std::mem::take(&mut *l.borrow_mut()));
    for m in managers {
        let _ = call(&m, "free", &[]);
    }
    // Newest first: each restores the `fetch` it replaced.
    for s in servers.into_iter().rev() {
        let _ = call(&s, "uninstall", &[]);
    }
}

/// Owns a test's fake server (anything with `uninstall()`) and the managers made with
/// [`track`]: dropping it frees them and uninstalls the server.
#[must_use = "dropping the guard uninstalls the server and frees the managers"]
pub struct Guard(());

impl Guard {
    /// Cleans up what an aborted test left, then guards `server`, which was just installed.
    pub fn new(server: &JsValue) -> Self {
        // A server installed before `server` belongs to an aborted test: `server` replaced its
        // fake `fetch`, so restore the real one first and put `server` back on top.
        let leftover = LIVE.with(|l| !l.borrow().1.is_empty() || !l.borrow().0.is_empty());
        if leftover {
            let _ = call(server, "uninstall", &[]);
            clean_up();
            let _ = call(server, "install", &[]);
        }
        LIVE.with(|l| l.borrow_mut().1.push(server.clone()));
        Guard(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        clean_up();
    }
}
