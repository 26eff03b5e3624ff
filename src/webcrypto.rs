//! WebCrypto: every `crypto.subtle` and `crypto.getRandomValues` call of the package.
//!
//! Signature verification (`verify` feature) imports public keys and verifies; DPoP (`dpop`
//! feature) generates the session's key pair, hashes, signs and draws random ids. Each method is
//! bound directly (smaller and faster than one `crypto.subtle[method](...args)` call through
//! `Reflect` and an argument array, which this module had), with one algorithm-parameters
//! builder. No key material leaves a `CryptoKey` except a public key's coordinates.

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::JsValue;
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

/// A `crypto.subtle` call's promise, awaited.
async fn settled(promise: Result<Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(promise?).await
}

// `crypto.subtle`'s methods, bound directly: no `Reflect` look-ups, no argument arrays. A
// `&[u8]` argument goes as a view on wasm memory for the duration of the call, which is all
// WebCrypto needs: it copies its `BufferSource` arguments before the method returns
// (WebCrypto §14.3, "get a copy of the bytes held by").
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[cfg(feature = "verify")]
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = importKey)]
    fn import_key(
        format: &str,
        key: &JsValue,
        algorithm: &JsValue,
        extractable: bool,
        usages: &JsValue,
    ) -> Result<Promise, JsValue>;
    #[cfg(feature = "verify")]
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = verify)]
    fn subtle_verify(
        algorithm: &JsValue,
        key: &JsValue,
        signature: &[u8],
        data: &[u8],
    ) -> Result<Promise, JsValue>;
    #[cfg(feature = "dpop")]
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = generateKey)]
    fn generate_key(
        algorithm: &JsValue,
        extractable: bool,
        usages: &JsValue,
    ) -> Result<Promise, JsValue>;
    #[cfg(feature = "dpop")]
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = exportKey)]
    fn export_key(format: &str, key: &JsValue) -> Result<Promise, JsValue>;
    #[cfg(feature = "dpop")]
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = digest)]
    fn digest(algorithm: &str, data: &[u8]) -> Result<Promise, JsValue>;
    #[cfg(feature = "dpop")]
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]) -> Result<JsValue, JsValue>;
    #[cfg(feature = "dpop")]
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = sign)]
    fn sign(algorithm: &JsValue, key: &JsValue, data: &[u8]) -> Result<Promise, JsValue>;
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
    // WebCrypto checks what the policy cannot cheaply: that an EC point lies on its curve, that
    // an RSA modulus is usable.
    settled(import_key("jwk", &jwk, &import_params(alg), false, &usages))
        .await
        .map_err(|_| {
            VerifyError::InvalidKey(
                "WebCrypto refused to import it (an EC point not on its curve?)",
            )
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
    let pair = settled(generate_key(&algorithm, false, &usages)).await?;
    let private = Reflect::get(&pair, &"privateKey".into())?;
    let public = Reflect::get(&pair, &"publicKey".into())?;
    // A public key is always exportable.
    let jwk = settled(export_key("jwk", &public)).await?;
    Ok((private, jwk))
}

/// SHA-256 of `data` (`crypto.subtle.digest`).
#[cfg(feature = "dpop")]
pub(crate) async fn sha256(data: &[u8]) -> Result<Vec<u8>, JsValue> {
    Ok(bytes(&settled(digest("SHA-256", data)).await?))
}

/// ES256 signature (raw `r || s`) of `data` with the private `key`.
#[cfg(feature = "dpop")]
pub(crate) async fn sign_es256(key: &JsValue, data: &[u8]) -> Result<Vec<u8>, JsValue> {
    let algorithm = params(&[("name", "ECDSA"), ("hash", "SHA-256")]);
    Ok(bytes(&settled(sign(&algorithm, key, data)).await?))
}

/// `n` bytes from `crypto.getRandomValues`, written straight into wasm memory (a `&mut [u8]`
/// argument is a view on it).
#[cfg(feature = "dpop")]
pub(crate) fn random_bytes(n: u32) -> Result<Vec<u8>, JsValue> {
    let mut buf = vec![0; n as usize];
    get_random_values(&mut buf)?;
    Ok(buf)
}

#[cfg(feature = "dpop")]
fn bytes(buffer: &JsValue) -> Vec<u8> {
    js_sys::Uint8Array::new(buffer).to_vec()
}
