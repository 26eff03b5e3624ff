//! Errors thrown to JavaScript: a real `Error` named `TokenManagerError` with a stable `code`.
//!
//! Applications switch on `code`, always one of the registry [`ErrorCode`] (the `.d.ts` union
//! is checked against it); `message` is for people. Neither ever contains a token, a cookie or
//! a password. Every core error reaches JavaScript the same way: [`thrown`].

use token_manager_core::message::Message;
use token_manager_core::session::{LoginError, RefreshError, TokenError};
use token_manager_core::verify::VerifyError;
use token_manager_core::{DecodeError, ErrorCode};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/js/error.js")]
extern "C" {
    /// The `TokenManagerError` (src/js/error.js: JavaScript's own checks make theirs there too).
    #[wasm_bindgen(js_name = coded)]
    fn js_coded(code: &str, message: &str) -> JsValue;
}

/// Builds the error object thrown to JavaScript.
pub(crate) fn coded(code: ErrorCode, message: &str) -> JsValue {
    js_coded(code.as_str(), message)
}

/// No DPoP proof could be made (no WebCrypto, or it failed).
pub(crate) fn dpop_failed() -> JsValue {
    coded(
        ErrorCode::DpopFailed,
        "no DPoP proof could be made (WebCrypto is missing or failed)",
    )
}

/// A `TypeError`-like misuse of the API.
pub(crate) fn invalid_argument(message: &str) -> JsValue {
    coded(ErrorCode::InvalidArgument, message)
}

/// A core error with its registered code.
pub(crate) trait CoreError: Message {
    fn error_code(&self) -> ErrorCode;
}

macro_rules! core_errors {
    ($($t:ty),+) => {
        $(impl CoreError for $t {
            fn error_code(&self) -> ErrorCode {
                <$t>::error_code(self)
            }
        })+
    };
}

core_errors!(DecodeError, VerifyError, TokenError, RefreshError);

impl CoreError for LoginError {
    fn error_code(&self) -> ErrorCode {
        LoginError::error_code(*self)
    }
}

/// The `TokenManagerError` of a core error: its code and its message. (Dynamic: one copy of
/// this path in the wasm whatever the error type.)
pub(crate) fn thrown(e: &dyn CoreError) -> JsValue {
    coded(e.error_code(), &e.message())
}
