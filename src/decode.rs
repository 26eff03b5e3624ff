//! `decodeClaims(token)`: the standalone decoder for apps that only need to read a token.

use std::cell::RefCell;

use js_sys::Uint8Array;
use token_manager_core::dangerous::{claims_json_unverified, ClaimsJsonDecoder, DecodeLimits};
use wasm_bindgen::prelude::*;

use crate::error::{invalid_argument, thrown};

#[wasm_bindgen(module = "/src/js/decode.js")]
extern "C" {
    /// The claims segment of `token` decoded into `into` by the page's native base64, after
    /// the checks the core's fast path makes on the token itself (src/js/decode.js): the
    /// bytes written, or -1 when the wasm must decode the token itself.
    #[wasm_bindgen(js_name = claimsInto)]
    fn claims_into(token: &JsValue, into: &Uint8Array, max_len: usize) -> i32;
    /// `Object.freeze(JSON.parse(json))`.
    #[wasm_bindgen(catch)]
    fn frozen(json: &str) -> Result<JsValue, JsValue>;
    /// Remembers the header segment (its first `len` characters) of a token that has just
    /// decoded.
    fn accepted(token: &JsValue, len: u32);
}

/// Room for the claims segment of the longest token that can decode.
const CLAIMS_ROOM: usize = DecodeLimits::DEFAULT.max_len / 4 * 3;

thread_local! {
    /// Where the page's native base64 writes a token's claims (allocated once).
    static CLAIMS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Decodes a token's claims **without verifying its signature** — for display only. Throws a
/// `TokenManagerError` whose `code` names what is wrong (`malformed_token`, `bad_base64`,
/// `bad_json`, `claim_type`, `too_large` …).
#[wasm_bindgen(js_name = decodeClaims, unchecked_return_type = "Claims")]
pub fn decode_claims(
    #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
) -> Result<JsValue, JsValue> {
    if let Some(claims) = CLAIMS.with(|room| native_claims(&token, &mut room.borrow_mut())) {
        return claims;
    }
    // Every token the page could split comes the fast way; this is the first token of an
    // issuer (a new header), a token refused, or a page without `Uint8Array.setFromBase64`.
    let bytes = token
        .as_string()
        .ok_or_else(|| invalid_argument("decodeClaims(token) needs a string"))?
        .into_bytes();
    // The token's own claims text when the checks pass, so nothing is written back.
    let json = claims_json_unverified(&bytes).map_err(|e| thrown(&e))?;
    // It decoded, so it is ASCII: the header's bytes are its characters.
    if let Some(len) = bytes.iter().position(|b| *b == b'.') {
        accepted(&token, len as u32);
    }
    parse_frozen(&json)
}

/// The fast path: the page splits the token and decodes its claims segment into `room`, the
/// core scans them (`ClaimsJsonDecoder::claims_text`). `None` for anything either refuses:
/// the caller then decodes the token from the start, which names the error.
fn native_claims(token: &JsValue, room: &mut Vec<u8>) -> Option<Result<JsValue, JsValue>> {
    let written = split_into(token, room)?;
    let text = ClaimsJsonDecoder::claims_text(room.get(..written)?)?;
    Some(parse_frozen(&text))
}

/// The page's half of the fast path: the length of the claims segment it decoded into `room`,
/// or `None` when it left the token to the core.
fn split_into(token: &JsValue, room: &mut Vec<u8>) -> Option<usize> {
    if room.is_empty() {
        room.resize(CLAIMS_ROOM, 0);
    }
    // SAFETY: the view covers `room` exactly and is used at once, before anything can
    // allocate (and so grow the memory, detaching it) or free `room`.
    let view = unsafe { Uint8Array::view_mut_raw(room.as_mut_ptr(), room.len()) };
    usize::try_from(claims_into(token, &view, DecodeLimits::DEFAULT.max_len)).ok()
}

/// The page's split on its own, for `tests/decode.rs`: the claims segment of `token` as the
/// page decoded it, or `None` when it left the token to the core. (Not exported to
/// JavaScript, so not in the package.)
#[doc(hidden)]
pub fn page_split(token: &JsValue) -> Option<Vec<u8>> {
    CLAIMS.with(|room| {
        let mut room = room.borrow_mut();
        let n = split_into(token, &mut room)?;
        room.get(..n).map(<[u8]>::to_vec)
    })
}

/// `Object.freeze(JSON.parse(json))`, for JSON the core checked or wrote (always an object),
/// in one call to the page.
pub(crate) fn parse_frozen(json: &str) -> Result<JsValue, JsValue> {
    frozen(json)
}
