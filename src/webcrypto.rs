//! WebCrypto: every `crypto.subtle` and `crypto.getRandomValues` call of the package.
//!
//! Signature verification (`verify` feature) imports public keys and verifies; DPoP (`dpop`
//! feature) generates the session's key pair, hashes, signs and draws random ids. Both go
//! through one `crypto.subtle[method](...args)` call and one algorithm-parameters builder, so
//! the bindings are written (and compiled) once. No key material leaves a `CryptoKey` except a
//! public key's coordinates.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[cfg(feature = "verify")]
use token_manager_core::{verify::VerifyError, Algorithm};

/// The algorithm object `{ k: "v", … }` WebCrypto takes.
fn params(pairs: &[(&str, &str)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &(*k).into(), &(*v).into());
    }
    o.into()
}

/// `crypto.subtle[method](...args)`, awaited.
async fn subtle(method: &str, args: &Array) -> Result<JsValue, JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())?;
    let subtle = Reflect::get(&crypto, &"subtle".into())?;
    let f: Function = Reflect::get(&subtle, &method.into())?.dyn_into()?;
    let promise: Promise = f.apply(&subtle, args)?.dyn_into()?;
    JsFuture::from(promise).await
}

/// `crypto.subtle.importKey("jwk", …)` of a public key for `alg`, usable only to verify.
#[cfg(feature = "verify")]
pub(crate) async fn import_verify_key(
    public_json: &str,
    alg: Algorithm,
) -> Result<JsValue, VerifyError> {
    let jwk = js_sys::JSON::parse(public_json)
        .map_err(|_| VerifyError::InvalidKey("its public members are not JSON"))?;
    let usages = Array::of1(&"verify".into());
    let args = Array::of5(
        &"jwk".into(),
        &jwk,
        &import_params(alg),
        &false.into(),
        &usages,
    );
    // WebCrypto checks what the policy cannot cheaply: that an EC point lies on its curve, that
    // an RSA modulus is usable.
    subtle("importKey", &args).await.map_err(|_| {
        VerifyError::InvalidKey("WebCrypto refused to import it (an EC point not on its curve?)")
    })
}

/// Whether what `crypto.subtle.verify`'s promise settled with is a verified signature: only a
/// resolved `true` is (a rejection's `DOMException` or anything else is not).
#[cfg(feature = "verify")]
pub(crate) fn verdict(settled: &JsValue) -> bool {
    settled.as_bool() == Some(true)
}

/// `crypto.subtle.verify(...)`'s promise, not awaited: a caller that chains one `then` on it
/// saves the closures and microtasks of an `await` through wasm-bindgen-futures. One direct
/// binding (no `Reflect` look-ups, no argument array), and the signature and the signed bytes go
/// as views on wasm memory rather than copies: wasm-bindgen passes a `&[u8]` argument of an
/// import as a view for the duration of the call, and WebCrypto copies its `BufferSource`
/// arguments before `verify` returns (WebCrypto §14.3.4, "get a copy of the bytes held by").
#[cfg(feature = "verify")]
pub(crate) fn verify_promise(
    alg: Algorithm,
    key: &JsValue,
    signature: &[u8],
    data: &[u8],
) -> Result<Promise, JsValue> {
    subtle_verify(&verify_params(alg), key, signature, data)
}

#[cfg(feature = "verify")]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = verify)]
    fn subtle_verify(
        algorithm: &JsValue,
        key: &JsValue,
        signature: &[u8],
        data: &[u8],
    ) -> Result<Promise, JsValue>;
}

#[cfg(feature = "verify")]
fn hash_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => "SHA-384",
        Algorithm::RS512 | Algorithm::PS512 => "SHA-512",
        _ => "SHA-256",
    }
}

#[cfg(feature = "verify")]
fn import_params(alg: Algorithm) -> JsValue {
    let hash = hash_name(alg);
    match alg {
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => {
            params(&[("name", "RSA-PSS"), ("hash", hash)])
        }
        Algorithm::ES256 => params(&[("name", "ECDSA"), ("namedCurve", "P-256")]),
        Algorithm::ES384 => params(&[("name", "ECDSA"), ("namedCurve", "P-384")]),
        Algorithm::EdDSA => params(&[("name", "Ed25519")]),
        _ => params(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", hash)]),
    }
}

#[cfg(feature = "verify")]
fn verify_params(alg: Algorithm) -> JsValue {
    match alg {
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => {
            // The salt is as long as the hash (RFC 7518 §3.5).
            let salt: u8 = match alg {
                Algorithm::PS256 => 32,
                Algorithm::PS384 => 48,
                _ => 64,
            };
            let p = params(&[("name", "RSA-PSS")]);
            let _ = Reflect::set(&p, &"saltLength".into(), &salt.into());
            p
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            params(&[("name", "ECDSA"), ("hash", hash_name(alg))])
        }
        // No parameter besides the name: the name alone is an algorithm identifier.
        Algorithm::EdDSA => "Ed25519".into(),
        _ => "RSASSA-PKCS1-v1_5".into(),
    }
}

/// A new ECDSA P-256 key pair whose private key cannot be exported (`extractable: false`) and
/// only signs: the private `CryptoKey` and the public key as a JWK object.
#[cfg(feature = "dpop")]
pub(crate) async fn generate_p256() -> Result<(JsValue, JsValue), JsValue> {
    let algorithm = params(&[("name", "ECDSA"), ("namedCurve", "P-256")]);
    let usages = Array::of1(&"sign".into());
    let pair = subtle(
        "generateKey",
        &Array::of3(&algorithm, &JsValue::FALSE, &usages),
    )
    .await?;
    let private = Reflect::get(&pair, &"privateKey".into())?;
    let public = Reflect::get(&pair, &"publicKey".into())?;
    // A public key is always exportable.
    let jwk = subtle("exportKey", &Array::of2(&"jwk".into(), &public)).await?;
    Ok((private, jwk))
}

/// SHA-256 of `data` (`crypto.subtle.digest`).
#[cfg(feature = "dpop")]
pub(crate) async fn sha256(data: &[u8]) -> Result<Vec<u8>, JsValue> {
    let args = Array::of2(&"SHA-256".into(), &Uint8Array::from(data));
    Ok(bytes(&subtle("digest", &args).await?))
}

/// ES256 signature (raw `r || s`) of `data` with the private `key`.
#[cfg(feature = "dpop")]
pub(crate) async fn sign_es256(key: &JsValue, data: &[u8]) -> Result<Vec<u8>, JsValue> {
    let algorithm = params(&[("name", "ECDSA"), ("hash", "SHA-256")]);
    let args = Array::of3(&algorithm, key, &Uint8Array::from(data));
    Ok(bytes(&subtle("sign", &args).await?))
}

/// `n` bytes from `crypto.getRandomValues`.
#[cfg(feature = "dpop")]
pub(crate) fn random_bytes(n: u32) -> Result<Vec<u8>, JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())?;
    let f: Function = Reflect::get(&crypto, &"getRandomValues".into())?.dyn_into()?;
    let buf = Uint8Array::new_with_length(n);
    f.call1(&crypto, &buf)?;
    Ok(buf.to_vec())
}

#[cfg(feature = "dpop")]
fn bytes(buffer: &JsValue) -> Vec<u8> {
    Uint8Array::new(buffer).to_vec()
}
