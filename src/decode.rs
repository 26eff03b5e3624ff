//! `decodeClaims(token)`: the standalone decoder for apps that only need to read a token.

use std::cell::RefCell;

use js_sys::{JsString, Object, Uint8Array, JSON};
use token_manager_core::dangerous::{ClaimsJsonDecoder, DecodeLimits};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::{invalid_argument, thrown};

#[wasm_bindgen]
extern "C" {
    /// The page's `TextEncoder`, for `encodeInto`.
    #[wasm_bindgen(js_name = TextEncoder)]
    type Utf8Encoder;
    #[wasm_bindgen(constructor, js_class = "TextEncoder")]
    fn new() -> Utf8Encoder;
    #[wasm_bindgen(method, js_class = "TextEncoder", js_name = encodeInto)]
    fn encode_into(this: &Utf8Encoder, source: &JsString, dest: &Uint8Array) -> EncodeProgress;

    /// `encodeInto`'s result.
    type EncodeProgress;
    #[wasm_bindgen(method, getter)]
    fn written(this: &EncodeProgress) -> u32;
}

thread_local! {
    static ENCODER: Utf8Encoder = Utf8Encoder::new();
    // Remembers the last header that passed its checks (one issuer's tokens share it).
    static DECODER: RefCell<ClaimsJsonDecoder> = const { RefCell::new(ClaimsJsonDecoder::new()) };
}

/// Decodes a token's claims **without verifying its signature** — for display only. Throws a
/// `TokenManagerError` whose `code` names what is wrong (`malformed_token`, `bad_base64`,
/// `bad_json`, `claim_type`, `too_large` …).
#[wasm_bindgen(js_name = decodeClaims, unchecked_return_type = "Claims")]
pub fn decode_claims(
    #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
) -> Result<JsValue, JsValue> {
    let token = token_bytes(&token)
        .ok_or_else(|| invalid_argument("decodeClaims(token) needs a string"))?;
    // The token's own claims text when the checks pass, so nothing is written back.
    let json = DECODER
        .with(|d| d.borrow_mut().decode(&token))
        .map_err(|e| thrown(&e))?;
    parse_frozen(&json)
}

/// A string's UTF-8 bytes. An ASCII string of at most the length limit (every token that can
/// decode) is copied by `TextEncoder.encodeInto` straight into wasm memory, natively, where
/// wasm-bindgen's own copy reads it a character at a time (half the speed in Chromium on a
/// 1.2 KB token, a tenth in Node); anything else, even a string too long to decode, is read as
/// before, so it gets the same error.
fn token_bytes(token: &JsValue) -> Option<Vec<u8>> {
    let s = token.dyn_ref::<JsString>()?;
    let len = s.length() as usize;
    if len <= DecodeLimits::default().max_len {
        let mut buf = vec![0u8; len];
        let written = ENCODER.with(|e| {
            // SAFETY: the view covers `buf` exactly and is used at once, before anything can
            // allocate (and so grow the memory, detaching it) or free `buf`.
            let view = unsafe { Uint8Array::view_mut_raw(buf.as_mut_ptr(), len) };
            e.encode_into(s, &view).written()
        });
        // `len` ASCII bytes written are `len` characters read: the whole string.
        if written as usize == len && buf.is_ascii() {
            return Some(buf);
        }
    }
    token.as_string().map(String::into_bytes)
}

/// `Object.freeze(JSON.parse(json))`, for JSON the core checked or wrote (always an object). Freezing
/// needs no `instanceof Object` check: `Object.freeze` of any value is that value.
pub(crate) fn parse_frozen(json: &str) -> Result<JsValue, JsValue> {
    let value = JSON::parse(json)?;
    Object::freeze(value.unchecked_ref::<Object>());
    Ok(value)
}
