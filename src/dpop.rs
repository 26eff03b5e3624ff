//! DPoP (RFC 9449) with WebCrypto: one non-extractable ECDSA P-256 key per session, in memory
//! only, the proofs of login, refresh and `auth.fetch` signed with it, and the server's nonces.
//!
//! The core decides what a proof says ([`token_manager_core::dpop`]); this module generates
//! the key, draws `jti`, hashes the token for `ath` and signs, all through
//! [`crate::webcrypto`]. The key goes to sibling tabs with the token (a `CryptoKey` is
//! structured-cloneable and stays non-extractable); a logout or `free()` drops it, and a tab
//! that starts alone makes a new one.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Reflect};
use token_manager_core::dpop::{
    asks_for_nonce, base64url, compact_proof, origin, signing_input, Nonces, ProofClaims,
    PublicKey, NONCE_HEADER, PROOF_HEADER,
};
use wasm_bindgen::JsValue;
use web_sys::{Request, Response};

use crate::driver::Driver;
use crate::error::dpop_failed;
use crate::http::{self, Answer};
use crate::webcrypto;

/// The session's key: the private `CryptoKey` (non-extractable, usable only to sign) and the
/// public half that goes into every proof's `jwk`.
#[derive(Debug)]
pub(crate) struct KeyPair {
    private: JsValue,
    public: PublicKey,
}

/// Why a request with a proof was not answered.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No proof could be made (no WebCrypto, or it failed): `dpop_failed`.
    Proof,
    /// `fetch` itself failed.
    Fetch(JsValue),
}

/// The DPoP state of one manager (`dpop: true`).
#[derive(Debug, Default)]
pub(crate) struct Dpop {
    key: RefCell<Option<Rc<KeyPair>>>,
    nonces: RefCell<Nonces>,
}

/// base64url of `n` random bytes.
fn random_id(n: u32) -> Result<String, JsValue> {
    Ok(base64url(&webcrypto::random_bytes(n)?))
}

fn string_member(obj: &JsValue, name: &str) -> Option<String> {
    Reflect::get(obj, &name.into()).ok()?.as_string()
}

impl KeyPair {
    /// A new P-256 key pair; the private key cannot be exported (`extractable: false`).
    async fn generate() -> Result<Self, JsValue> {
        let (private, jwk) = webcrypto::generate_p256().await?;
        // Only the public key's x and y are kept.
        let (Some(x), Some(y)) = (string_member(&jwk, "x"), string_member(&jwk, "y")) else {
            return Err(dpop_failed());
        };
        Ok(Self {
            private,
            public: PublicKey { x, y },
        })
    }

    /// The key as sent to sibling tabs: `{ privateKey, x, y }` (structured clone keeps the
    /// `CryptoKey` non-extractable).
    pub(crate) fn to_message(&self) -> JsValue {
        let o = Object::new();
        let _ = Reflect::set(&o, &"privateKey".into(), &self.private);
        let _ = Reflect::set(&o, &"x".into(), &self.public.x.as_str().into());
        let _ = Reflect::set(&o, &"y".into(), &self.public.y.as_str().into());
        o.into()
    }

    /// A key a sibling sent, if it is one: a private, non-extractable `CryptoKey` with its
    /// public coordinates.
    pub(crate) fn from_message(v: &JsValue) -> Option<Rc<Self>> {
        let private = Reflect::get(v, &"privateKey".into()).ok()?;
        let get = |name: &str| Reflect::get(&private, &name.into()).ok();
        if !private.is_object()
            || get("type")?.as_string()?.as_str() != "private"
            || get("extractable")?.as_bool()?
        {
            return None;
        }
        Some(Rc::new(Self {
            private,
            public: PublicKey {
                x: string_member(v, "x")?,
                y: string_member(v, "y")?,
            },
        }))
    }

    /// A compact proof for `method url`, with `ath` when `token` is given.
    async fn proof(
        &self,
        method: &str,
        url: &str,
        iat: u64,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, JsValue> {
        let ath = match token {
            None => None,
            Some(t) => Some(base64url(&webcrypto::sha256(t.as_bytes()).await?)),
        };
        let jti = random_id(16)?;
        let input = signing_input(
            &self.public,
            &ProofClaims {
                jti: &jti,
                htm: method,
                url,
                iat,
                ath: ath.as_deref(),
                nonce,
            },
        );
        let signature = webcrypto::sign_es256(&self.private, input.as_bytes()).await?;
        Ok(compact_proof(input, &signature))
    }
}

/// Whether this build makes proofs.
pub(crate) const ENABLED: bool = true;

/// The option `dpop` is available in this build.
pub(crate) fn check_option(enabled: bool) -> Result<bool, JsValue> {
    Ok(enabled)
}

impl Dpop {
    /// The state of a manager with `dpop: enabled`.
    pub(crate) fn new(enabled: bool) -> Option<Self> {
        enabled.then(Self::default)
    }

    /// The session's key, made now when there is none. `fresh` (a login): a new key, used
    /// only once [`Dpop::adopt`]ed, so a failed login leaves the held token's key in place.
    pub(crate) async fn key(&self, fresh: bool) -> Result<Rc<KeyPair>, SendError> {
        if !fresh {
            if let Some(k) = self.key.borrow().as_ref() {
                return Ok(k.clone());
            }
        }
        let key = Rc::new(KeyPair::generate().await.map_err(|_| SendError::Proof)?);
        if !fresh {
            *self.key.borrow_mut() = Some(key.clone());
        }
        Ok(key)
    }

    /// The key the current token is bound to, for sibling tabs.
    pub(crate) fn current(&self) -> Option<Rc<KeyPair>> {
        self.key.borrow().clone()
    }

    /// The token just adopted is bound to `key`: it signs from now on.
    pub(crate) fn adopt(&self, key: Rc<KeyPair>) {
        *self.key.borrow_mut() = Some(key);
    }

    /// Logout or `free()`: the key is dropped (and with it, once no request holds it, the
    /// `CryptoKey`), and the nonces are forgotten.
    pub(crate) fn forget(&self) {
        self.key.borrow_mut().take();
        self.nonces.borrow_mut().clear();
    }

    /// Sends `build(proof)` with a proof of `key` for `method url` (`ath` of `token` when
    /// given); when the answer asks for the server's nonce, once more with a new proof that
    /// carries it. Every answer's `DPoP-Nonce` is remembered for its origin.
    pub(crate) async fn send(
        &self,
        driver: &Driver,
        key: &KeyPair,
        method: &str,
        url: &str,
        token: Option<&str>,
        build: &dyn Fn(&str) -> Result<Request, JsValue>,
    ) -> Result<Response, SendError> {
        let origin = origin(url);
        let mut retried = false;
        loop {
            let nonce = self.nonces.borrow().get(origin).map(str::to_owned);
            let iat = driver.server_now().as_secs();
            let proof = key
                .proof(method, url, iat, token, nonce.as_deref())
                .await
                .map_err(|_| SendError::Proof)?;
            let request = build(&proof).map_err(SendError::Fetch)?;
            let response = http::fetch(&request).await.map_err(SendError::Fetch)?;
            let headers = response.headers();
            let header = |name: &str| headers.get(name).ok().flatten();
            driver.observe_server_date(header("Date").as_deref());
            let fresh = header(NONCE_HEADER);
            self.nonces.borrow_mut().observe(origin, fresh.as_deref());
            let status = response.status();
            if retried || fresh.is_none() || !(status == 400 || status == 401) {
                return Ok(response);
            }
            // The JSON error of a token endpoint: read from a copy, the answer stays unread.
            let json_error = match response.clone() {
                Ok(copy) if status == 400 => {
                    http::answer(&copy).await.ok().and_then(|a| a.error_code())
                }
                _ => None,
            };
            let www = header("WWW-Authenticate");
            if !asks_for_nonce(status, true, www.as_deref(), json_error.as_deref()) {
                return Ok(response);
            }
            retried = true;
        }
    }

    /// [`Dpop::send`] of a `POST` to a token endpoint (login, refresh, logout), its answer
    /// read.
    pub(crate) async fn exchange(
        &self,
        driver: &Driver,
        key: &KeyPair,
        url: &str,
        token: Option<&str>,
        build: &dyn Fn(&str) -> Result<Request, JsValue>,
    ) -> Result<Answer, SendError> {
        let response = self.send(driver, key, "POST", url, token, build).await?;
        http::answer(&response).await.map_err(SendError::Fetch)
    }
}

/// Sets the proof header on `headers`.
pub(crate) fn set_proof(headers: &web_sys::Headers, proof: &str) -> Result<(), JsValue> {
    headers.set(PROOF_HEADER, proof)
}
