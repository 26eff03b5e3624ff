//! `decodeClaims(token)`: the standalone decoder for apps that only need to read a token.

use js_sys::{Object, JSON};
use token_manager_core::dangerous::decode_unverified;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::{invalid_argument, thrown};

/// Decodes a token's claims **without verifying its signature** — for display only. Throws a
/// `TokenManagerError` whose `code` names what is wrong (`malformed_token`, `bad_base64`,
/// `bad_json`, `claim_type`, `too_large` …).
#[wasm_bindgen(js_name = decodeClaims, unchecked_return_type = "Claims")]
pub fn decode_claims(
    #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
) -> Result<JsValue, JsValue> {
    let token = token
        .as_string()
        .ok_or_else(|| invalid_argument("decodeClaims(token) needs a string"))?;
    let decoded = decode_unverified(&token).map_err(|e| thrown(&e))?;
    parse_frozen(&decoded.claims.to_json())
}

/// `Object.freeze(JSON.parse(json))`, for JSON the core wrote (always an object). Freezing
/// needs no `instanceof Object` check: `Object.freeze` of any value is that value.
pub(crate) fn parse_frozen(json: &str) -> Result<JsValue, JsValue> {
    let value = JSON::parse(json)?;
    Object::freeze(value.unchecked_ref::<Object>());
    Ok(value)
}
