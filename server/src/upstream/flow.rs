//! The sign-in state between `/auth/authorize` and `/auth/callback`: the PKCE verifier,
//! `state`, `nonce` and `returnTo`, in a short-lived `__Host-` cookie sealed with AES-256-GCM
//! under the server's key-encryption key. The browser can neither read it (the verifier and
//! nonce stay secret) nor forge or alter it; the server keeps nothing per sign-in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use subtle_eq::constant_time_eq;
use zeroize::Zeroize;

use crate::store::KeyEncryptionKey;

/// The cookie's name. `__Host-`: `Secure`, `Path=/`, no `Domain`.
pub(crate) const STATE_COOKIE: &str = "__Host-oidc-state";

/// How long a sign-in may take at the provider.
pub(crate) const STATE_TTL: u64 = 600;

/// Associated data of the seal, so no other sealed value of this server passes as one.
const AAD: &str = "wasm-token-manager oidc sign-in state v1";

/// Longest cookie value accepted before decoding.
const MAX_COOKIE: usize = 4096;

#[derive(Serialize, Deserialize)]
pub(crate) struct SignInState {
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) pkce_verifier: String,
    pub(crate) return_to: String,
    /// Unix seconds (server clock).
    pub(crate) expires_at: u64,
}

impl std::fmt::Debug for SignInState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInState([redacted])")
    }
}

impl Drop for SignInState {
    fn drop(&mut self) {
        self.state.zeroize();
        self.nonce.zeroize();
        self.pkce_verifier.zeroize();
    }
}

/// Why the callback's state is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateRefused {
    /// No state cookie: it expired, the browser dropped it, or the callback was not
    /// started by this browser.
    Missing,
    /// The cookie does not open (forged, altered, another server's key) or has expired.
    Invalid,
    /// The `state` parameter is missing or differs from the cookie's.
    Mismatch,
}

impl SignInState {
    /// The `Set-Cookie` value. `SameSite=Lax`: the callback is a top-level navigation from
    /// the provider's site, on which a `Strict` cookie would not be sent.
    pub(crate) fn set_cookie(&self, kek: &KeyEncryptionKey) -> Result<String, String> {
        let mut json = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        let sealed = kek.seal(AAD, &json).map_err(|e| e.to_string());
        json.zeroize();
        Ok(format!(
            "{STATE_COOKIE}={}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={STATE_TTL}",
            URL_SAFE_NO_PAD.encode(sealed?)
        ))
    }

    /// Opens the cookie and checks it against the callback's `state` at `now`.
    pub(crate) fn check(
        kek: &KeyEncryptionKey,
        cookie: Option<&str>,
        state: Option<&str>,
        now: u64,
    ) -> Result<Self, StateRefused> {
        let cookie = cookie.ok_or(StateRefused::Missing)?;
        if cookie.len() > MAX_COOKIE {
            return Err(StateRefused::Invalid);
        }
        let sealed = URL_SAFE_NO_PAD
            .decode(cookie)
            .map_err(|_| StateRefused::Invalid)?;
        let mut json = kek.open(AAD, &sealed).map_err(|_| StateRefused::Invalid)?;
        let parsed: Result<Self, _> = serde_json::from_slice(&json);
        json.zeroize();
        let parsed = parsed.map_err(|_| StateRefused::Invalid)?;
        if now >= parsed.expires_at {
            return Err(StateRefused::Invalid);
        }
        match state {
            Some(s) if constant_time_eq(s.as_bytes(), parsed.state.as_bytes()) => Ok(parsed),
            _ => Err(StateRefused::Mismatch),
        }
    }
}

/// `Set-Cookie` value that deletes the state cookie: a sign-in state is used once.
pub(crate) fn clear_state_cookie() -> String {
    format!("{STATE_COOKIE}=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0")
}

mod subtle_eq {
    /// Compares without an early exit, so the time taken does not tell how much of a
    /// guessed `state` was right.
    pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(expires_at: u64) -> SignInState {
        SignInState {
            state: "the-state".into(),
            nonce: "the-nonce".into(),
            pkce_verifier: "the-verifier".into(),
            return_to: "/".into(),
            expires_at,
        }
    }

    fn value(set_cookie: &str) -> String {
        set_cookie
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned()
    }

    #[test]
    fn the_cookie_hides_its_secrets_and_opens_only_with_the_right_state_in_time() {
        let kek = KeyEncryptionKey::generate();
        let header = state(100).set_cookie(&kek).unwrap();
        assert!(header.starts_with("__Host-oidc-state="));
        assert!(header.contains("HttpOnly; Secure; SameSite=Lax; Path=/"));
        let v = value(&header);
        assert!(!v.contains("verifier") && !v.contains("nonce"));
        let ok = SignInState::check(&kek, Some(&v), Some("the-state"), 99).unwrap();
        assert_eq!(ok.pkce_verifier, "the-verifier");
        let check = |cookie: Option<&str>, s: Option<&str>, now| {
            SignInState::check(&kek, cookie, s, now).map(|_| ())
        };
        assert_eq!(
            check(None, Some("the-state"), 1),
            Err(StateRefused::Missing)
        );
        assert_eq!(
            check(Some(&v), Some("other"), 1),
            Err(StateRefused::Mismatch)
        );
        assert_eq!(check(Some(&v), None, 1), Err(StateRefused::Mismatch));
        assert_eq!(
            check(Some(&v), Some("the-state"), 100),
            Err(StateRefused::Invalid)
        );
        assert_eq!(
            check(Some("garbage!"), Some("the-state"), 1),
            Err(StateRefused::Invalid)
        );
        let other = KeyEncryptionKey::generate();
        assert!(SignInState::check(&other, Some(&v), Some("the-state"), 1).is_err());
    }
}
