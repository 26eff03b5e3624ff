//! Errors thrown to JavaScript: a real `Error` named `TokenManagerError` with a stable `code`.
//!
//! Applications switch on `code`; `message` is for people. Neither ever contains a token,
//! a cookie or a password.

use js_sys::{Error, Reflect};
use wasm_bindgen::JsValue;

/// Builds the error object thrown to JavaScript.
pub(crate) fn coded(code: &str, message: &str) -> JsValue {
    let error = Error::new(message);
    error.set_name("TokenManagerError");
    // Setting a property on a fresh Error cannot fail.
    let _ = Reflect::set(&error, &"code".into(), &code.into());
    error.into()
}

/// A `TypeError`-like misuse of the API.
pub(crate) fn invalid_argument(message: &str) -> JsValue {
    coded("invalid_argument", message)
}
