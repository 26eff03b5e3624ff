//! Optional signature verification: the issuer's JWKS, WebCrypto, and the core's policy.
//!
//! The core decides what must hold ([`token_manager_core::verify`]); this module fetches and
//! caches keys and runs `crypto.subtle.verify`. Keys are imported once per `(key, algorithm)`
//! and cached; an unknown `kid` refetches the JWKS at most once per cooldown; a JWKS fetch that
//! fails keeps the keys already known. One path verifies: [`Verifier::verify_compact`] checks a
//! compact JWS (`compactVerify`), and a token (`verifyToken`, the manager's `verify`) is that
//! followed by its claims, parsed only once the signature verified.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use js_sys::{Array, Object, Reflect, JSON};
use token_manager_core::dangerous::{
    decode_jws_unverified, DecodeLimits, UnverifiedJws, UnverifiedToken,
};
use token_manager_core::endpoint::loopback_host;
use token_manager_core::message::Message;
use token_manager_core::verify::{
    check_claims, check_header, check_signature_shape, parse_jwks, select_key, Jwk, Policy,
    VerifyError,
};
use token_manager_core::ErrorCode;
use token_manager_core::{Algorithm, Timestamp};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestCredentials, RequestInit};

use crate::error::coded;
use crate::options::invalid;
use crate::{http, webcrypto};

/// True for `https:` URLs and for `http:` on a loopback host (exactly `localhost`, `[::1]`
/// or `127.x.y.z`), where browsers treat the origin as potentially trustworthy (and `Secure`
/// cookies work).
fn secure_or_loopback(url: &web_sys::Url) -> bool {
    match url.protocol().as_str() {
        "https:" => true,
        "http:" => loopback_host(&url.hostname()),
        _ => false,
    }
}

pub(crate) fn get(obj: &JsValue, name: &str) -> Result<Option<JsValue>, JsValue> {
    let v = Reflect::get(obj, &JsValue::from_str(name))?;
    Ok((!v.is_undefined()).then_some(v))
}

fn plain_object(v: &JsValue) -> bool {
    v.is_object() && !Array::is_array(v) && !v.is_function()
}

/// A string member of the page's `location` (windows and workers): `href` or `origin`.
fn location(name: &str) -> String {
    let loc = Reflect::get(&js_sys::global(), &"location".into()).unwrap_or(JsValue::UNDEFINED);
    Reflect::get(&loc, &name.into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// Where keys come from: a JWKS URL, or the inline set the keys were read from.
#[derive(Clone, Debug)]
enum KeySource {
    Url(String),
    Inline,
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

/// The longest JWS `compactVerify` accepts: 1 MiB. A token stays capped at 16 KiB (the
/// decoder's default), but a signed document or webhook body may be larger; its payload is
/// only decoded and hashed, never parsed.
pub(crate) const JWS_MAX_LEN: usize = 1 << 20;

/// Who reads the options: the manager's `verify`, `verifyToken` or `compactVerify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The manager's `verify` option.
    Manager,
    /// `verifyToken`.
    VerifyToken,
    /// `compactVerify`.
    CompactVerify,
}

impl Caller {
    /// How options are named in errors.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Caller::CompactVerify => "compactVerify",
            _ => "verify",
        }
    }
}

/// Options that only make sense for a JWT's claims.
const CLAIMS_OPTIONS: [&str; 4] = ["issuer", "audience", "leewaySeconds", "currentTime"];

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

/// Option `name` of `obj`, if given, which must be a string; `label` names it in errors.
fn optional_string(obj: &JsValue, name: &str, label: &str) -> Result<Option<String>, JsValue> {
    match get(obj, name)? {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| invalid(label, "a string")),
    }
}

impl Verifier {
    /// Reads `verify` options: `{ jwksUrl | jwks, algorithms, issuer?, audience?, typ?,
    /// leewaySeconds?, jwksCooldownMs? }`, plus `currentTime` for `verifyToken`.
    pub(crate) fn from_options(obj: &JsValue, allow_current_time: bool) -> Result<Self, JsValue> {
        let caller = if allow_current_time {
            Caller::VerifyToken
        } else {
            Caller::Manager
        };
        Self::read(obj, caller)
    }

    /// Reads the options for `caller`; `compactVerify` takes `{ jwksUrl | jwks, algorithms,
    /// typ?, jwksCooldownMs? }` and refuses the claims options by name.
    pub(crate) fn read(obj: &JsValue, caller: Caller) -> Result<Self, JsValue> {
        let p = caller.prefix();
        let name = |option: &str| [p, ".", option].concat();
        if !plain_object(obj) {
            return Err(invalid(p, "an object { jwksUrl or jwks, algorithms, … }"));
        }
        for key in Object::keys(obj.unchecked_ref::<Object>()).iter() {
            let key = key.as_string().unwrap_or_default();
            if caller == Caller::CompactVerify && CLAIMS_OPTIONS.contains(&key.as_str()) {
                return Err(coded(
                    ErrorCode::UnknownOption,
                    &[
                        "option `",
                        p,
                        ".",
                        &key,
                        "` checks claims: compactVerify verifies any JWS and reads no claims (use verifyToken for a JWT)",
                    ]
                    .concat(),
                ));
            }
            if !KNOWN.contains(&key.as_str())
                || (key == "currentTime" && caller != Caller::VerifyToken)
            {
                return Err(coded(
                    ErrorCode::UnknownOption,
                    &["unknown option `", p, ".", &key, "`"].concat(),
                ));
            }
        }
        let algs = get(obj, "algorithms")?
            .filter(Array::is_array)
            .ok_or_else(|| invalid(&name("algorithms"), "an array such as [\"RS256\"]"))?;
        let mut algorithms = Vec::new();
        for a in Array::from(&algs).iter() {
            let alg_name = a.as_string().unwrap_or_default();
            let alg = ALGORITHMS
                .iter()
                .find(|(n, _)| *n == alg_name)
                .map(|(_, a)| *a)
                .ok_or_else(|| {
                    invalid(
                        &name("algorithms"),
                        "a list of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
                    )
                })?;
            algorithms.push(alg);
        }
        let mut policy =
            Policy::new(algorithms).map_err(|e| invalid(&name("algorithms"), &e.message()))?;
        policy.issuer = optional_string(obj, "issuer", &name("issuer"))?;
        policy.audience = optional_string(obj, "audience", &name("audience"))?;
        policy.typ = optional_string(obj, "typ", &name("typ"))?;
        if let Some(v) = get(obj, "leewaySeconds")? {
            let s = v.as_f64().filter(|s| (0.0..=86_400.0).contains(s));
            policy.leeway = Duration::from_secs(
                s.ok_or_else(|| invalid(&name("leewaySeconds"), "a number from 0 to 86400"))?
                    as u64,
            );
        }
        let cooldown = match get(obj, "jwksCooldownMs")? {
            None => Duration::from_secs(60),
            Some(v) => Duration::from_millis(
                v.as_f64()
                    .filter(|s| (0.0..=86_400_000.0).contains(s))
                    .ok_or_else(|| invalid(&name("jwksCooldownMs"), "a number of milliseconds"))?
                    as u64,
            ),
        };
        let (source, keys) = match (
            optional_string(obj, "jwksUrl", &name("jwksUrl"))?,
            get(obj, "jwks")?,
        ) {
            (Some(url), None) => {
                let href = location("href");
                let parsed = web_sys::Url::new_with_base(&url, &href)
                    .map_err(|_| invalid(&name("jwksUrl"), "a valid URL"))?;
                if !secure_or_loopback(&parsed) {
                    return Err(coded(
                        ErrorCode::InsecureEndpoint,
                        &[
                            "option `",
                            p,
                            ".jwksUrl` must be an https: URL or a loopback http: URL",
                        ]
                        .concat(),
                    ));
                }
                (KeySource::Url(parsed.href()), Vec::new())
            }
            (None, Some(jwks)) => {
                if !plain_object(&jwks) {
                    return Err(invalid(&name("jwks"), "a key set object { keys: [...] }"));
                }
                let text = JSON::stringify(&jwks)
                    .ok()
                    .and_then(|t| t.as_string())
                    .ok_or_else(|| invalid(&name("jwks"), "a key set object { keys: [...] }"))?;
                // Checked now, so a broken inline set is a clear error when the options are
                // read rather than a refusal of every token later.
                let keys = parse_jwks(text.as_bytes()).map_err(|e| {
                    coded(
                        ErrorCode::InvalidOption,
                        &["option `", p, ".jwks`: ", &e.message()].concat(),
                    )
                })?;
                if keys.is_empty() {
                    return Err(coded(
                        ErrorCode::InvalidOption,
                        &[
                            "option `",
                            p,
                            ".jwks` holds no RSA, EC or OKP key (symmetric and unknown key types are skipped)",
                        ]
                        .concat(),
                    ));
                }
                (KeySource::Inline, keys)
            }
            _ => return Err(invalid(p, "given exactly one of `jwksUrl` and `jwks`")),
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
            http::new_request(&JsValue::from_str(url), &init).map_err(|_| unavailable())?;
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

    /// The public members (JSON) of the key for `kid` and `alg`, fetching the JWKS if need be.
    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        now: Timestamp,
    ) -> Result<String, VerifyError> {
        if self.keys.borrow().is_empty() {
            let fetched = self.refresh_keys(now).await;
            if self.keys.borrow().is_empty() {
                fetched?;
            }
        }
        let public_json = |k: &Jwk| k.public_json.clone();
        let first = select_key(&self.keys.borrow(), kid, alg).map(public_json);
        match first {
            Err(VerifyError::UnknownKid) => {
                // Keys rotate: look again, at most once per cooldown. A failed fetch keeps the
                // known keys, so the answer is then "unknown kid", not an outage.
                let _ = self.refresh_keys(now).await;
                select_key(&self.keys.borrow(), kid, alg).map(public_json)
            }
            other => other,
        }
    }

    /// The key with these public members imported for `alg`, from the cache or imported now.
    async fn crypto_key(
        &self,
        public_json: String,
        alg: Algorithm,
    ) -> Result<JsValue, VerifyError> {
        if let Some(k) = self.imported_key(&public_json, alg) {
            return Ok(k);
        }
        let imported = webcrypto::import_verify_key(&public_json, alg).await?;
        self.imported
            .borrow_mut()
            .push((public_json, alg, imported.clone()));
        Ok(imported)
    }

    /// The cached import of the key with these public members for `alg`.
    fn imported_key(&self, public_json: &str, alg: Algorithm) -> Option<JsValue> {
        self.imported
            .borrow()
            .iter()
            .find(|(json, a, _)| json == public_json && *a == alg)
            .map(|(_, _, k)| k.clone())
    }

    /// Verifies a compact JWS: header policy, key, signature shape, WebCrypto. `now` only
    /// paces JWKS refetches. Returns it decoded, its payload untouched.
    pub(crate) async fn verify_compact(
        &self,
        jws: &str,
        limits: &DecodeLimits,
        now: Timestamp,
    ) -> Result<UnverifiedJws, VerifyError> {
        let (decoded, ready) = self.verify_compact_now(jws, limits)?;
        let promise = match ready {
            Some(promise) => promise,
            None => {
                let alg = decoded.header.alg;
                let key = self
                    .key_for(decoded.header.kid.as_deref(), alg, now)
                    .await?;
                check_signature_shape(alg, &decoded.signature)?;
                let crypto_key = self.crypto_key(key, alg).await?;
                signature_check(alg, &crypto_key, jws, &decoded)?
            }
        };
        let settled = JsFuture::from(promise).await.unwrap_or(JsValue::FALSE);
        if !webcrypto::verdict(&settled) {
            return Err(VerifyError::BadSignature);
        }
        Ok(decoded)
    }

    /// The verification of [`Self::verify_compact`] without an `await` when it needs none:
    /// decodes `jws`, checks its header and, when the key is among the known keys and already
    /// imported, its signature's shape, and returns it decoded with `crypto.subtle.verify`'s
    /// pending promise (only a resolved `true` verifies it, [`webcrypto::verdict`]). No
    /// promise: the key needs a fetch, an import or a refusal that a JWKS refetch decides,
    /// which [`Self::verify_compact`] does, with the same checks in the same order, so both
    /// paths refuse a token with the same code.
    pub(crate) fn verify_compact_now(
        &self,
        jws: &str,
        limits: &DecodeLimits,
    ) -> Result<(UnverifiedJws, Option<js_sys::Promise>), VerifyError> {
        let decoded = decode_jws_unverified(jws.as_bytes(), limits)?;
        check_header(&decoded, &self.policy)?;
        let alg = decoded.header.alg;
        let crypto_key = {
            let keys = self.keys.borrow();
            let Ok(key) = select_key(&keys, decoded.header.kid.as_deref(), alg) else {
                return Ok((decoded, None));
            };
            check_signature_shape(alg, &decoded.signature)?;
            match self.imported_key(&key.public_json, alg) {
                Some(k) => k,
                None => return Ok((decoded, None)),
            }
        };
        let promise = signature_check(alg, &crypto_key, jws, &decoded)?;
        Ok((decoded, Some(promise)))
    }

    /// Verifies `token` at `now` (the issuer's time as best known): the compact verification,
    /// then the payload as claims and the claims checks. Returns the decoded token.
    pub(crate) async fn verify(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<UnverifiedToken, VerifyError> {
        let limits = DecodeLimits::default();
        let jws = self.verify_compact(token, &limits, now).await?;
        self.claims(jws, now)
    }

    /// After the signature of `jws` verified: its payload as claims, checked at `now`.
    pub(crate) fn claims(
        &self,
        jws: UnverifiedJws,
        now: Timestamp,
    ) -> Result<UnverifiedToken, VerifyError> {
        let decoded = UnverifiedToken::from_jws(jws, DecodeLimits::default().max_depth)?;
        check_claims(&decoded.claims, &self.policy, now)?;
        Ok(decoded)
    }
}

/// `crypto.subtle.verify` of `decoded`'s signature over its signing input (a prefix of `jws`).
fn signature_check(
    alg: Algorithm,
    crypto_key: &JsValue,
    jws: &str,
    decoded: &UnverifiedJws,
) -> Result<js_sys::Promise, VerifyError> {
    let data = &jws.as_bytes()[..decoded.signing_input_len];
    webcrypto::verify_promise(alg, crypto_key, &decoded.signature, data)
        .map_err(|_| VerifyError::BadSignature)
}
