//! The standalone verification exports, `verifyToken` and `compactVerify`: each reads its
//! options into a [`Verifier`] (cached per caller and policy, so repeated calls share keys and
//! imports) and verifies with it at the wall clock or the given `currentTime`.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Promise, Reflect, Uint8Array, JSON};
use token_manager_core::dangerous::{DecodeLimits, UnverifiedJws};
use token_manager_core::verify::VerifyError;
use token_manager_core::Timestamp;
use wasm_bindgen::prelude::*;

use crate::error::thrown;
use crate::options::invalid;
use crate::verify::get;
use crate::verify::{Caller, Verifier, JWS_MAX_LEN};
use crate::{clock, webcrypto};

thread_local! {
    /// Verifiers of `verifyToken` and `compactVerify`, by caller and options JSON, so repeated
    /// calls share keys and imports.
    static STANDALONE: RefCell<Vec<(Caller, JsValue, Rc<Verifier>)>> = const { RefCell::new(Vec::new()) };
}

#[wasm_bindgen]
extern "C" {
    /// A promise, for `then` with plain functions (js-sys's takes closures).
    type Thenable;
    /// `promise.then(f, f)`: one handler for both outcomes, which tells them apart.
    #[wasm_bindgen(method, js_name = then)]
    fn then_both(this: &Thenable, on_fulfilled: &JsValue, on_rejected: &JsValue) -> Promise;
}

/// The cached verifier for these options, or a new one. Keyed by the caller and the policy
/// only: a `currentTime` that changes on every call must not make a new verifier (and a JWKS
/// fetch) per call, and options one caller refuses must not reach it through the other's cache.
/// The key is the JSON of a copy of the options whose `currentTime` is set to `undefined`, which
/// `JSON.stringify` leaves out (deleting the property instead turns the copy into a slow
/// dictionary-mode object, which cost more than the rest of the call).
fn standalone(options: &JsValue, caller: Caller, timed: bool) -> Result<Rc<Verifier>, JsValue> {
    // Without a `currentTime`, the options are their own key.
    let policy_only: JsValue = if timed {
        let copy = Object::assign(&Object::new(), &Object::from(options.clone()));
        Reflect::set(&copy, &"currentTime".into(), &JsValue::UNDEFINED)?;
        copy.into()
    } else {
        options.clone()
    };
    // Compared in JavaScript (`===`): the JSON never crosses into wasm. Options JSON cannot
    // express (a cycle, a BigInt) are never cached.
    let json = JSON::stringify(&policy_only).ok().map(JsValue::from);
    let cached = STANDALONE.with(|c| {
        c.borrow()
            .iter()
            .find(|(c, k, _)| *c == caller && Some(k) == json.as_ref())
            .map(|(_, _, v)| v.clone())
    });
    if let Some(v) = cached {
        return Ok(v);
    }
    let v = Rc::new(Verifier::read(options, caller)?);
    if let Some(json) = json {
        STANDALONE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= 8 {
                c.remove(0);
            }
            c.push((caller, json, v.clone()));
        });
    }
    Ok(v)
}

/// What a verification does once the signature verified.
#[derive(Clone, Copy)]
enum Then {
    /// `verifyToken`: the payload as claims, checked at this time; resolves to the claims.
    Claims(Timestamp),
    /// `compactVerify`: resolves to `{ payload, protectedHeader }`.
    Jws,
}

/// Verifies `jws` with `verifier` and resolves as `then` says. When the key is known and
/// imported, the promise is `crypto.subtle.verify`'s with one handler chained: no Rust future,
/// and no microtask besides WebCrypto's own. Otherwise (the first call, a JWKS to fetch, a key
/// to import) the whole verification runs as a future.
fn start(
    jws: String,
    verifier: Rc<Verifier>,
    limits: DecodeLimits,
    now: Timestamp,
    then: Then,
) -> Result<Promise, JsValue> {
    let (decoded, ready) = verifier
        .verify_compact_now(&jws, &limits)
        .map_err(|e| thrown(&e))?;
    let Some(promise) = ready else {
        // The first call, a JWKS to fetch, a key to import: the verification as a future.
        return Ok(crate::promise(async move {
            let decoded = verifier
                .verify_compact(&jws, &limits, now)
                .await
                .map_err(|e| thrown(&e))?;
            finish(&verifier, decoded, then)
        }));
    };
    Ok(chain(verifier, decoded, promise, then))
}

/// `promise.then(f, f)` with a handler that finishes this verification when WebCrypto
/// answers: only a resolved `true` verifies.
fn chain(verifier: Rc<Verifier>, decoded: UnverifiedJws, promise: Promise, then: Then) -> Promise {
    let handler = Closure::once_into_js(move |settled: JsValue| {
        if !webcrypto::verdict(&settled) {
            return Err(thrown(&VerifyError::BadSignature));
        }
        finish(&verifier, decoded, then)
    });
    promise
        .unchecked_ref::<Thenable>()
        .then_both(&handler, &handler)
}

/// After the signature verified: the claims or the JWS, as `then` says.
fn finish(verifier: &Verifier, jws: UnverifiedJws, then: Then) -> Result<JsValue, JsValue> {
    match then {
        Then::Claims(now) => {
            let decoded = verifier.claims(jws, now).map_err(|e| thrown(&e))?;
            crate::decode::parse_frozen(&decoded.claims.to_json())
        }
        Then::Jws => {
            let header = crate::decode::parse_frozen(&jws.header_json)?;
            let result = Object::new();
            Reflect::set(
                &result,
                &"payload".into(),
                &Uint8Array::from(&jws.payload[..]),
            )?;
            Reflect::set(&result, &"protectedHeader".into(), &header)?;
            Ok(result.into())
        }
    }
}

/// A promise of `run()`'s value, rejected with its error.
fn settled(run: impl FnOnce() -> Result<Promise, JsValue>) -> Promise {
    run().unwrap_or_else(|e| Promise::reject(&e))
}

/// Verifies a token's signature against the issuer's keys and checks its claims. Resolves to
/// the claims; rejects with a `TokenManagerError` whose `code` says why (`bad_signature`,
/// `alg_not_allowed`, `unknown_kid`, `token_expired`, `wrong_issuer` …).
///
/// Options: `{ jwksUrl | jwks, algorithms, issuer?, audience?, typ?, leewaySeconds? (60),
/// jwksCooldownMs? (60000), currentTime? (ms, defaults to now) }`.
#[wasm_bindgen(js_name = verifyToken, unchecked_return_type = "Promise<Claims>")]
pub fn verify_token(
    #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
    #[wasm_bindgen(unchecked_param_type = "VerifyOptions")] options: JsValue,
) -> Promise {
    settled(|| {
        let token = token.as_string().ok_or_else(|| {
            crate::error::invalid_argument("verifyToken(token, options) needs a string")
        })?;
        let time = get(&options, "currentTime").ok().flatten();
        let timed = time.is_some();
        let now = match time {
            Some(t) => Timestamp::from_millis(
                t.as_f64()
                    .filter(|t| t.is_finite() && *t >= 0.0)
                    .ok_or_else(|| invalid("verify.currentTime", "milliseconds since the epoch"))?
                    as u64,
            ),
            None => clock::wall(),
        };
        let verifier = standalone(&options, Caller::VerifyToken, timed)?;
        start(
            token,
            verifier,
            DecodeLimits::default(),
            now,
            Then::Claims(now),
        )
    })
}

/// Verifies a JWS in compact serialization (RFC 7515 §7.1) against the keys of `options` and
/// the same header and key policy as `verifyToken`, and resolves to `{ payload, protectedHeader }`:
/// the payload bytes exactly as signed (possibly empty, never parsed) and the protected header.
/// Rejects with a `TokenManagerError` whose `code` says why; the JSON serialization is
/// `not_compact`.
///
/// Options: `{ jwksUrl | jwks, algorithms, typ?, jwksCooldownMs? (60000) }`.
#[wasm_bindgen(js_name = compactVerify, unchecked_return_type = "Promise<CompactVerifyResult>")]
pub fn compact_verify(
    #[wasm_bindgen(unchecked_param_type = "string")] jws: JsValue,
    #[wasm_bindgen(unchecked_param_type = "CompactVerifyOptions")] options: JsValue,
) -> Promise {
    settled(|| {
        let Some(jws) = jws.as_string() else {
            if jws.is_object() && !jws.is_instance_of::<Uint8Array>() {
                let e = VerifyError::Decode(token_manager_core::DecodeError::NotCompact);
                return Err(thrown(&e));
            }
            return Err(crate::error::invalid_argument(
                "compactVerify(jws, options) needs the JWS as a string",
            ));
        };
        let verifier = standalone(&options, Caller::CompactVerify, false)?;
        let limits = DecodeLimits {
            max_len: JWS_MAX_LEN,
            ..DecodeLimits::default()
        };
        start(jws, verifier, limits, clock::wall(), Then::Jws)
    })
}

#[wasm_bindgen(typescript_custom_section)]
const COMPACT_TYPES: &'static str = r#"
/** Options of `compactVerify`: where the keys are and what the header must be. No claims options. */
export interface CompactVerifyOptions {
  /** The key set's URL (https: or loopback). Exactly one of `jwksUrl` and `jwks`. */
  jwksUrl?: string;
  /** An inline key set, checked when the options are read. */
  jwks?: JsonWebKeySet;
  /** The allowlist; the JWS's own `alg` never widens it. */
  algorithms: VerifyAlgorithm[];
  /** Required `typ`, compared case-insensitively, with or without `application/`. */
  typ?: string;
  /** An unknown `kid` refetches the JWKS at most this often, ms. Default 60000. */
  jwksCooldownMs?: number;
}

/** The protected header of a verified JWS: the typed parameters, and every other member as sent. */
export interface JwsHeader {
  alg: VerifyAlgorithm;
  kid?: string;
  typ?: string;
  cty?: string;
  [parameter: string]: unknown;
}

/** A verified JWS: its payload exactly as signed and its protected header (frozen). */
export interface CompactVerifyResult {
  payload: Uint8Array;
  protectedHeader: JwsHeader;
}
"#;
