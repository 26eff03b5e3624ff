//! What the server keeps per upstream family: the provider's refresh token, its current
//! access token, the ID token and its validated claims. One sealed blob (AES-256-GCM under
//! the key-encryption key, bound to the family id), so none of it is readable at rest; the
//! access token's expiry is stored beside it in clear, for the near-expiry decision.
//!
//! The policy is here too: refresh upstream only when the cached access token is inside
//! [`upstream_lead`] of its expiry, a lead longer than any the browser package uses, so a
//! browser that refreshes on its own schedule always receives a token it will keep.

use openidconnect::core::CoreTokenResponse;
use openidconnect::OAuth2TokenResponse;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::store::{KeyEncryptionKey, StoreError};

/// Lifetime assumed when the provider's answer has no `expires_in`.
const DEFAULT_LIFETIME: u64 = 300;

/// The provider's tokens of one family. Secret: `Debug` is redacted, the strings are
/// zeroized on drop.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct UpstreamTokens {
    pub(crate) access_token: String,
    /// Unix seconds (server clock): receipt time plus the provider's `expires_in`.
    pub(crate) access_exp: u64,
    /// The provider's `expires_in` of the current access token.
    pub(crate) lifetime: u64,
    pub(crate) refresh_token: Option<String>,
    pub(crate) id_token: Option<String>,
    /// The validated ID token's claims, for the UI (without `nonce`).
    pub(crate) id_token_claims: serde_json::Value,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("access_exp", &self.access_exp)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Drop for UpstreamTokens {
    fn drop(&mut self) {
        self.access_token.zeroize();
        if let Some(t) = self.refresh_token.as_mut() {
            t.zeroize();
        }
        if let Some(t) = self.id_token.as_mut() {
            t.zeroize();
        }
    }
}

fn lifetime_of(response: &CoreTokenResponse) -> u64 {
    response
        .expires_in()
        .map_or(DEFAULT_LIFETIME, |d| d.as_secs())
        .clamp(1, 10 * 365 * 24 * 3600)
}

fn aad(family_id: &str) -> String {
    format!("upstream-tokens:{family_id}")
}

impl UpstreamTokens {
    pub(crate) fn from_response(
        response: &CoreTokenResponse,
        id_token: Option<String>,
        id_token_claims: serde_json::Value,
        now: u64,
    ) -> Self {
        let lifetime = lifetime_of(response);
        Self {
            access_token: response.access_token().secret().clone(),
            access_exp: now.saturating_add(lifetime),
            lifetime,
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            id_token,
            id_token_claims,
        }
    }

    /// After a refresh: the new access token, the rotated refresh token if the provider
    /// sent one (else the old one stays valid), the sign-in's ID token and claims.
    pub(crate) fn refreshed(&self, response: &CoreTokenResponse, now: u64) -> Self {
        let lifetime = lifetime_of(response);
        Self {
            access_token: response.access_token().secret().clone(),
            access_exp: now.saturating_add(lifetime),
            lifetime,
            refresh_token: response
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| self.refresh_token.clone()),
            id_token: self.id_token.clone(),
            id_token_claims: self.id_token_claims.clone(),
        }
    }

    pub(crate) fn seal(
        &self,
        kek: &KeyEncryptionKey,
        family_id: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let mut json = serde_json::to_vec(self)
            .map_err(|e| StoreError::Backend(format!("cannot encode upstream tokens: {e}")))?;
        let sealed = kek.seal(&aad(family_id), &json);
        json.zeroize();
        sealed
    }

    pub(crate) fn open(
        kek: &KeyEncryptionKey,
        family_id: &str,
        sealed: &[u8],
    ) -> Result<Self, StoreError> {
        let mut json = kek
            .open(&aad(family_id), sealed)
            .map_err(|_| StoreError::Backend("upstream tokens do not decrypt".into()))?;
        let tokens = serde_json::from_slice(&json)
            .map_err(|_| StoreError::Backend("upstream tokens do not parse".into()));
        json.zeroize();
        tokens
    }

    /// `true` when the cached access token should be replaced before it is handed out.
    pub(crate) fn near_expiry(&self, now: u64) -> bool {
        now.saturating_add(upstream_lead(self.lifetime)) >= self.access_exp
    }
}

/// `min(max(75 s, 30% of the lifetime), 75% of the lifetime)`: above the browser package's
/// largest lead (`min(max(60 s, 20%), 50%)` plus up to 25% jitter), so the token answered is
/// never one the browser would refresh again at once.
pub(crate) fn upstream_lead(lifetime: u64) -> u64 {
    (lifetime * 3 / 10).max(75).min(lifetime * 3 / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(access_exp: u64, lifetime: u64) -> UpstreamTokens {
        UpstreamTokens {
            access_token: "at-secret".into(),
            access_exp,
            lifetime,
            refresh_token: Some("rt-secret".into()),
            id_token: None,
            id_token_claims: serde_json::json!({"sub": "alice"}),
        }
    }

    #[test]
    fn the_lead_is_above_the_browsers_for_short_and_long_tokens() {
        for lifetime in [1u64, 4, 10, 60, 300, 900, 3600, 86_400] {
            let browser = (lifetime as f64 * 0.2).max(60.0).min(lifetime as f64 * 0.5) * 1.25;
            assert!(
                upstream_lead(lifetime) as f64 >= browser.floor(),
                "{lifetime}"
            );
            assert!(upstream_lead(lifetime) < lifetime.max(2), "{lifetime}");
        }
    }

    #[test]
    fn a_fresh_token_is_kept_and_one_near_expiry_is_replaced() {
        let t = tokens(1000 + 300, 300);
        assert!(!t.near_expiry(1000));
        assert!(!t.near_expiry(1000 + 300 - 91));
        assert!(t.near_expiry(1000 + 300 - 90));
        assert!(t.near_expiry(2000));
    }

    #[test]
    fn sealed_tokens_open_only_for_their_family_and_hide_every_secret() {
        let kek = KeyEncryptionKey::generate();
        let sealed = tokens(5, 5).seal(&kek, "fam-1").unwrap();
        for secret in [&b"at-secret"[..], b"rt-secret"] {
            assert!(!sealed.windows(secret.len()).any(|w| w == secret));
        }
        let opened = UpstreamTokens::open(&kek, "fam-1", &sealed).unwrap();
        assert_eq!(opened.refresh_token.as_deref(), Some("rt-secret"));
        assert!(UpstreamTokens::open(&kek, "fam-2", &sealed).is_err());
        assert!(!format!("{opened:?}").contains("secret"));
    }
}
