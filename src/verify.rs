//! Optional signature verification: the issuer's JWKS, WebCrypto, and the core's policy.
//!
//! The core decides what must hold ([`token_manager_core::verify`]); this module fetches and
//! caches keys and runs `crypto.subtle.verify`. Keys are imported once per `(key, algorithm)`
//! and cached; an unknown `kid` refetches the JWKS at most once per cooldown; a JWKS fetch that
//! fails keeps the keys already known.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array, JSON};
use token_manager_core::dangerous::{decode_unverified, UnverifiedToken};
use token_manager_core::verify::{
    check_claims, check_header, check_signature_shape, parse_jwks, select_key, Jwk, Policy,
    VerifyError,
};
use token_manager_core::{Algorithm, Timestamp};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{RequestCredentials, RequestInit};

use crate::error::coded;
use crate::options::{get, invalid, plain_object, secure_or_loopback};
use crate::{clock, http};

/// Where keys come from.
#[derive(Clone, Debug)]
enum KeySource {
    Url(String),
    Inline(Vec<Jwk>),
}

/// A verifier for one issuer: policy, key source and caches.
pub(crate) struct Verifier {
    policy: Policy,
    source: KeySource,
    cooldown: Duration,
    keys: RefCell<Vec<Jwk>>,
    fetched_at: Cell<Option<Timestamp>>,
    imported: RefCell<Vec<(String, Algorithm, JsValue)>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

const ALGORITHMS: [(&str, Algorithm); 9] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

const KNOWN: [&str; 9] = [
    "jwksUrl",
    "jwks",
    "issuer",
    "audience",
    "algorithms",
    "typ",
    "leewaySeconds",
    "jwksCooldownMs",
    "currentTime",
];

fn optional_string(obj: &JsValue, name: &str) -> Result<Option<String>, JsValue> {
    match get(obj, name)? {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| invalid(name, "a string")),
    }
}

impl Verifier {
    /// Reads `verify` options: `{ jwksUrl | jwks, algorithms, issuer?, audience?, typ?,
    /// leewaySeconds?, jwksCooldownMs? }`. `prefix` names the option in errors.
    pub(crate) fn from_options(obj: &JsValue, allow_current_time: bool) -> Result<Self, JsValue> {
        if !plain_object(obj) {
            return Err(invalid(
                "verify",
                "an object { jwksUrl, algorithms, issuer, audience }",
            ));
        }
        for key in Object::keys(obj.unchecked_ref::<Object>()).iter() {
            let key = key.as_string().unwrap_or_default();
            if !KNOWN.contains(&key.as_str()) || (key == "currentTime" && !allow_current_time) {
                return Err(coded(
                    "unknown_option",
                    &format!("unknown option `verify.{key}`"),
                ));
            }
        }
        let algs = get(obj, "algorithms")?
            .filter(Array::is_array)
            .ok_or_else(|| invalid("verify.algorithms", "an array such as [\"RS256\"]"))?;
        let mut algorithms = Vec::new();
        for a in Array::from(&algs).iter() {
            let name = a.as_string().unwrap_or_default();
            let alg = ALGORITHMS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, a)| *a)
                .ok_or_else(|| {
                    invalid(
                        "verify.algorithms",
                        "a list of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
                    )
                })?;
            algorithms.push(alg);
        }
        let mut policy =
            Policy::new(algorithms).map_err(|e| invalid("verify.algorithms", &e.to_string()))?;
        policy.issuer = optional_string(obj, "issuer")?;
        policy.audience = optional_string(obj, "audience")?;
        policy.typ = optional_string(obj, "typ")?;
        if let Some(v) = get(obj, "leewaySeconds")? {
            let s = v.as_f64().filter(|s| (0.0..=86_400.0).contains(s));
            policy.leeway = Duration::from_secs(
                s.ok_or_else(|| invalid("verify.leewaySeconds", "a number from 0 to 86400"))?
                    as u64,
            );
        }
        let cooldown = match get(obj, "jwksCooldownMs")? {
            None => Duration::from_secs(60),
            Some(v) => Duration::from_millis(
                v.as_f64()
                    .filter(|s| (0.0..=86_400_000.0).contains(s))
                    .ok_or_else(|| invalid("verify.jwksCooldownMs", "a number of milliseconds"))?
                    as u64,
            ),
        };
        let source = match (optional_string(obj, "jwksUrl")?, get(obj, "jwks")?) {
            (Some(url), None) => {
                let (href, _) = crate::options::location();
                let parsed = web_sys::Url::new_with_base(&url, &href)
                    .map_err(|_| invalid("verify.jwksUrl", "a valid URL"))?;
                if !secure_or_loopback(&parsed) {
                    return Err(coded(
                        "insecure_endpoint",
                        "option `verify.jwksUrl` must be an https: URL or a loopback http: URL",
                    ));
                }
                KeySource::Url(parsed.href())
            }
            (None, Some(jwks)) => {
                let text = JSON::stringify(&jwks)
                    .ok()
                    .and_then(|t| t.as_string())
                    .ok_or_else(|| invalid("verify.jwks", "a JWKS object"))?;
                KeySource::Inline(
                    parse_jwks(text.as_bytes())
                        .map_err(|e| invalid("verify.jwks", &e.to_string()))?,
                )
            }
            _ => return Err(invalid("verify", "exactly one of `jwksUrl` and `jwks`")),
        };
        let keys = match &source {
            KeySource::Inline(keys) => keys.clone(),
            KeySource::Url(_) => Vec::new(),
        };
        Ok(Verifier {
            policy,
            source,
            cooldown,
            keys: RefCell::new(keys),
            fetched_at: Cell::new(None),
            imported: RefCell::new(Vec::new()),
        })
    }

    /// Fetches the JWKS if the cooldown allows; keeps the known keys when it fails.
    async fn refresh_keys(&self, now: Timestamp) -> Result<(), VerifyError> {
        let KeySource::Url(url) = &self.source else {
            return Ok(());
        };
        if self
            .fetched_at
            .get()
            .is_some_and(|t| now < t + self.cooldown)
        {
            return Ok(());
        }
        self.fetched_at.set(Some(now));
        let unavailable = || VerifyError::KeysUnavailable;
        let init = RequestInit::new();
        init.set_credentials(RequestCredentials::Omit);
        let request =
            web_sys::Request::new_with_str_and_init(url, &init).map_err(|_| unavailable())?;
        let response = http::fetch(&request).await.map_err(|_| unavailable())?;
        if response.status() != 200 {
            return Err(unavailable());
        }
        let text = JsFuture::from(response.text().map_err(|_| unavailable())?)
            .await
            .ok()
            .and_then(|t| t.as_string())
            .ok_or_else(unavailable)?;
        let keys = parse_jwks(text.as_bytes())?;
        *self.keys.borrow_mut() = keys;
        self.imported.borrow_mut().clear();
        Ok(())
    }

    async fn key_for(&self, token: &UnverifiedToken, now: Timestamp) -> Result<Jwk, VerifyError> {
        let (kid, alg) = (token.header.kid.as_deref(), token.header.alg);
        if self.keys.borrow().is_empty() {
            let fetched = self.refresh_keys(now).await;
            if self.keys.borrow().is_empty() {
                fetched?;
            }
        }
        let first = select_key(&self.keys.borrow(), kid, alg).cloned();
        match first {
            Err(VerifyError::UnknownKid) => {
                // Keys rotate: look again, at most once per cooldown. A failed fetch keeps the
                // known keys, so the answer is then "unknown kid", not an outage.
                let _ = self.refresh_keys(now).await;
                select_key(&self.keys.borrow(), kid, alg).cloned()
            }
            other => other,
        }
    }

    async fn crypto_key(&self, key: &Jwk, alg: Algorithm) -> Result<JsValue, VerifyError> {
        if let Some((_, _, k)) = self
            .imported
            .borrow()
            .iter()
            .find(|(json, a, _)| *json == key.public_json && *a == alg)
        {
            return Ok(k.clone());
        }
        let imported = import_key(&key.public_json, alg).await?;
        self.imported
            .borrow_mut()
            .push((key.public_json.clone(), alg, imported.clone()));
        Ok(imported)
    }

    /// Verifies `token` at `now` (the issuer's time as best known). Returns the decoded token.
    pub(crate) async fn verify(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<UnverifiedToken, VerifyError> {
        let decoded = decode_unverified(token)?;
        check_header(&decoded, &self.policy)?;
        let key = self.key_for(&decoded, now).await?;
        check_signature_shape(decoded.header.alg, &decoded.signature)?;
        let crypto_key = self.crypto_key(&key, decoded.header.alg).await?;
        let data = &token.as_bytes()[..decoded.signing_input_len];
        if !subtle_verify(decoded.header.alg, &crypto_key, &decoded.signature, data).await {
            return Err(VerifyError::BadSignature);
        }
        check_claims(&decoded.claims, &self.policy, now)?;
        Ok(decoded)
    }
}

/// `crypto.subtle.importKey("jwk", …)` of a public key for `alg`, usable only to verify.
async fn import_key(public_json: &str, alg: Algorithm) -> Result<JsValue, VerifyError> {
    let jwk = JSON::parse(public_json).map_err(|_| VerifyError::BadJwks)?;
    let usages = Array::of1(&"verify".into());
    let args = Array::of5(
        &"jwk".into(),
        &jwk,
        &import_params(alg),
        &false.into(),
        &usages,
    );
    subtle_call("importKey", &args)
        .await
        .map_err(|_| VerifyError::KeyMismatch)
}

/// `crypto.subtle.verify`; anything but a resolved `true` is a bad signature.
async fn subtle_verify(alg: Algorithm, key: &JsValue, signature: &[u8], data: &[u8]) -> bool {
    let args = Array::of4(
        &verify_params(alg),
        key,
        &Uint8Array::from(signature),
        &Uint8Array::from(data),
    );
    subtle_call("verify", &args)
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Checks only a JWS signature: `signature` over `signing_input` with one public JWK, through
/// the same key selection, shape check and WebCrypto calls as a token's verification.
///
/// Not an API. The JWT path refuses JWS examples whose payload is not a claims set, such as
/// RFC 7520 §4.1 and §4.2, and the tests check the signature arithmetic against exactly those.
/// Nothing but the signature is checked here.
#[doc(hidden)]
pub async fn verify_signature_only(
    alg: Algorithm,
    jwk_json: &str,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let keys = parse_jwks(format!("{{\"keys\":[{jwk_json}]}}").as_bytes())?;
    let key = select_key(&keys, None, alg)?;
    check_signature_shape(alg, signature)?;
    let crypto_key = import_key(&key.public_json, alg).await?;
    if subtle_verify(alg, &crypto_key, signature, signing_input).await {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

fn hash_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => "SHA-384",
        Algorithm::RS512 | Algorithm::PS512 => "SHA-512",
        _ => "SHA-256",
    }
}

fn params(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &(*k).into(), v);
    }
    o.into()
}

fn import_params(alg: Algorithm) -> JsValue {
    let hash = hash_name(alg);
    match alg {
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => {
            params(&[("name", "RSA-PSS".into()), ("hash", hash.into())])
        }
        Algorithm::ES256 => params(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())]),
        Algorithm::ES384 => params(&[("name", "ECDSA".into()), ("namedCurve", "P-384".into())]),
        Algorithm::EdDSA => params(&[("name", "Ed25519".into())]),
        _ => params(&[("name", "RSASSA-PKCS1-v1_5".into()), ("hash", hash.into())]),
    }
}

fn verify_params(alg: Algorithm) -> JsValue {
    match alg {
        Algorithm::PS256 => params(&[("name", "RSA-PSS".into()), ("saltLength", 32.into())]),
        Algorithm::PS384 => params(&[("name", "RSA-PSS".into()), ("saltLength", 48.into())]),
        Algorithm::PS512 => params(&[("name", "RSA-PSS".into()), ("saltLength", 64.into())]),
        Algorithm::ES256 | Algorithm::ES384 => {
            params(&[("name", "ECDSA".into()), ("hash", hash_name(alg).into())])
        }
        Algorithm::EdDSA => params(&[("name", "Ed25519".into())]),
        _ => params(&[("name", "RSASSA-PKCS1-v1_5".into())]),
    }
}

/// Calls `crypto.subtle[method](...args)` and awaits it.
async fn subtle_call(method: &str, args: &Array) -> Result<JsValue, JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())?;
    let subtle = Reflect::get(&crypto, &"subtle".into())?;
    let f: Function = Reflect::get(&subtle, &method.into())?.dyn_into()?;
    let promise: Promise = f.apply(&subtle, args)?.dyn_into()?;
    JsFuture::from(promise).await
}

thread_local! {
    /// Verifiers of `verifyToken`, by options JSON, so repeated calls share keys and imports.
    static STANDALONE: RefCell<Vec<(String, Rc<Verifier>)>> = const { RefCell::new(Vec::new()) };
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
    future_to_promise(async move {
        let token = token.as_string().ok_or_else(|| {
            crate::error::invalid_argument("verifyToken(token, options) needs a string")
        })?;
        let now = match get(&options, "currentTime").ok().flatten() {
            Some(t) => Timestamp::from_millis(
                t.as_f64()
                    .filter(|t| t.is_finite() && *t >= 0.0)
                    .ok_or_else(|| invalid("verify.currentTime", "milliseconds since the epoch"))?
                    as u64,
            ),
            None => clock::wall(),
        };
        // Keyed by the policy only: a `currentTime` that changes on every call must not make
        // a new verifier (and a JWKS fetch) per call.
        let policy_only = Object::assign(&Object::new(), &Object::from(options.clone()));
        let _ = Reflect::delete_property(&policy_only, &JsValue::from("currentTime"));
        let key = JSON::stringify(&policy_only)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default();
        let cached = STANDALONE.with(|c| {
            c.borrow()
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        });
        let verifier = match cached {
            Some(v) => v,
            None => {
                let v = Rc::new(Verifier::from_options(&options, true)?);
                STANDALONE.with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() >= 8 {
                        c.remove(0);
                    }
                    c.push((key, v.clone()));
                });
                v
            }
        };
        let decoded = verifier
            .verify(&token, now)
            .await
            .map_err(|e| coded(e.code(), &e.to_string()))?;
        let claims = JSON::parse(&decoded.claims.to_json())?;
        if let Some(obj) = claims.dyn_ref::<Object>() {
            Object::freeze(obj);
        }
        Ok(claims)
    })
}
