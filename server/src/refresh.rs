//! Refresh token values, the cookie that carries them, and the reuse-detection policy.
//!
//! A refresh token is 32 random bytes, sent to the browser base64url-encoded in the
//! `__Host-refresh` cookie and stored only as its SHA-256 hash. Tokens of one login form a
//! *family* (a chain); each rotation marks the presented token rotated and makes its
//! successor current. The successor is not drawn at random but derived from the presented
//! token with a secret per-family key, so presenting the same old cookie twice within the
//! grace window yields the *same* new cookie: whichever of several racing responses the
//! browser stores last, the jar ends up holding the one current token. The README's
//! "Grace window" section has the full reasoning.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use token_manager_core::protocol::REFRESH_COOKIE;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the base64url (unpadded) encoding of 32 bytes.
const ENCODED_LEN: usize = 43;

/// Domain separation for successor derivation, so the per-family key is never used for
/// anything that could collide with it.
const SUCCESSOR_LABEL: &[u8] = b"wasm-token-manager refresh successor v1\0";

/// SHA-256 of a refresh token: what the database stores and looks up.
pub(crate) type TokenHash = [u8; 32];

/// A refresh token value. Secret: `Debug` is redacted and the bytes are zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RefreshToken([u8; 32]);

impl RefreshToken {
    /// 256 bits from the operating system's CSPRNG.
    pub(crate) fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses a cookie value. Anything but exactly 43 base64url characters is refused
    /// before it reaches the database.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        if value.len() != ENCODED_LEN {
            return None;
        }
        let mut bytes = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(value, &mut bytes) {
            Ok(32) => {}
            _ => return None,
        }
        // Non-canonical encodings (stray low bits in the last character) would give a
        // second spelling of the same token; only the canonical one is accepted.
        if URL_SAFE_NO_PAD.encode(bytes) != value {
            return None;
        }
        Some(Self(bytes))
    }

    /// The cookie value. The caller must not log it.
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub(crate) fn hash(&self) -> TokenHash {
        Sha256::digest(self.0).into()
    }

    /// The token that replaces this one when it is rotated, in the family keyed by
    /// `family_key`. Without the key (kept only in the database) a stolen old token does
    /// not reveal its successor.
    pub(crate) fn successor(&self, family_key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the fallback
        // keeps the function total anyway.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(family_key) {
            Ok(mac) => mac,
            Err(_) => return Self::generate(),
        };
        mac.update(SUCCESSOR_LABEL);
        mac.update(&self.0);
        Self(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

/// A fresh secret for a new family's successor derivation.
pub(crate) fn new_family_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// A random, non-secret identifier (family ids, `jti`s, key ids): 16 bytes, base64url.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `Set-Cookie` value that stores `token` for `max_age` seconds.
///
/// `__Host-` requires `Secure`, `Path=/` and no `Domain`; `HttpOnly` keeps it out of
/// JavaScript; `SameSite=Strict` keeps it off cross-site requests entirely.
pub(crate) fn set_cookie(token: &RefreshToken, max_age: u64) -> String {
    format!(
        "{REFRESH_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}",
        token.encode()
    )
}

/// `Set-Cookie` value that deletes the refresh cookie (same attributes, or the browser
/// would treat it as a different cookie).
pub(crate) fn clear_cookie() -> String {
    format!("{REFRESH_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// The session rules a refresh is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionRules {
    /// Idle timeout: lifetime of each refresh token, renewed by every rotation.
    pub(crate) refresh_ttl: u64,
    /// Window in which a rotated token still yields the current one.
    pub(crate) grace: u64,
    /// Grace replays one rotated token may make; the next one is reuse.
    pub(crate) grace_replays: u32,
    /// Absolute session lifetime from the login, whatever the refreshes.
    pub(crate) max_age: u64,
}

impl SessionRules {
    /// Expiry of a refresh token issued at `now`: the idle timeout, never past the
    /// session's absolute end.
    pub(crate) fn token_expiry(&self, now: u64, session_ends_at: u64) -> u64 {
        now.saturating_add(self.refresh_ttl).min(session_ends_at)
    }
}

/// The row facts a refresh is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenFacts {
    pub(crate) expires_at: u64,
    pub(crate) rotated_at: Option<u64>,
    /// Grace replays this token has already made.
    pub(crate) grace_replays: u32,
    pub(crate) family_revoked: bool,
    pub(crate) session_ends_at: u64,
    /// The family is DPoP-bound: a refresh needs a valid proof.
    pub(crate) dpop_bound: bool,
}

/// What presenting a refresh token means, given its row and its family's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presented {
    /// The family is DPoP-bound and no proof came with the token: refuse, change nothing
    /// (whoever holds the cookie without the key gains nothing, and the family stays
    /// usable by its owner).
    ProofMissing,
    /// The family's current token: rotate it.
    Current,
    /// Rotated no longer than `grace` ago: answer with the family's current token
    /// (concurrent tabs, or a response that was lost on the way).
    RotatedWithinGrace,
    /// Rotated longer ago, or replayed more often than a browser would: someone kept
    /// an old token. Revoke the family.
    Replayed,
    /// The token's own lifetime is over.
    Expired,
    /// The session reached its absolute lifetime: sign in again.
    SessionEnded,
    /// The family was revoked (logout, a replay, a later login with this cookie).
    FamilyRevoked,
}

/// The reuse-detection policy, kept free of SQL so it can be read (and tested) alone.
/// `with_proof`: a valid DPoP proof came with the token.
pub(crate) fn classify(
    token: &TokenFacts,
    now: u64,
    rules: &SessionRules,
    with_proof: bool,
) -> Presented {
    // First, as the separate check before the rotation did: without the key, nothing
    // about the family is revealed or changed.
    if token.dpop_bound && !with_proof {
        return Presented::ProofMissing;
    }
    if token.family_revoked {
        return Presented::FamilyRevoked;
    }
    // Past the absolute lifetime nothing is issued, and nothing is revoked either: an old
    // cookie of an ended session is worthless to a thief too.
    if now >= token.session_ends_at {
        return Presented::SessionEnded;
    }
    // A replayed token that is already past its expiry is just expired: it could not be
    // used by a thief either, so it does not revoke anything.
    if now >= token.expires_at {
        return Presented::Expired;
    }
    match token.rotated_at {
        None => Presented::Current,
        // Each grace replay hands out the current token again; tabs racing one cookie or
        // a lost response need a few, a thief replaying a stolen cookie wants many.
        Some(at)
            if now.saturating_sub(at) <= rules.grace
                && token.grace_replays < rules.grace_replays =>
        {
            Presented::RotatedWithinGrace
        }
        Some(_) => Presented::Replayed,
    }
}

/// Why a [`Presented::Replayed`] token revokes its family, as recorded with the revocation:
/// `replay_cap` for one replayed too often within the grace window, `reuse` for one
/// replayed after it.
pub(crate) fn replay_reason(token: &TokenFacts, now: u64, rules: &SessionRules) -> &'static str {
    if token
        .rotated_at
        .is_some_and(|at| now.saturating_sub(at) <= rules.grace)
    {
        "replay_cap"
    } else {
        "reuse"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_through_its_cookie_value() {
        let t = RefreshToken::generate();
        let v = t.encode();
        assert_eq!(v.len(), ENCODED_LEN);
        assert_eq!(RefreshToken::parse(&v), Some(t));
    }

    #[test]
    fn malformed_cookie_values_are_refused() {
        let good = RefreshToken::generate().encode();
        for bad in [
            "",
            "short",
            &good[..42],
            &format!("{good}A"),
            &good.replace(|c: char| c.is_ascii_alphanumeric(), "+"),
            &"=".repeat(43),
        ] {
            assert_eq!(RefreshToken::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_non_canonical_spelling_of_a_valid_token_is_refused() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let token = RefreshToken::generate();
        let good = token.encode();
        // 32 bytes are 256 bits; 43 characters carry 258. The last character's two low bits
        // are spare and zero in the canonical spelling: setting one spells the same bytes
        // a second way, which a lenient decoder would accept as the same token.
        let last = ALPHABET
            .iter()
            .position(|&c| c == good.as_bytes()[42])
            .unwrap();
        assert_eq!(last & 0b11, 0, "the canonical spelling has no stray bits");
        for stray in 1..=3 {
            let mut spelled = good.clone().into_bytes();
            spelled[42] = ALPHABET[last | stray];
            let noncanonical = String::from_utf8(spelled).unwrap();
            let lenient = base64::engine::GeneralPurpose::new(
                &base64::alphabet::URL_SAFE,
                base64::engine::GeneralPurposeConfig::new()
                    .with_encode_padding(false)
                    .with_decode_allow_trailing_bits(true)
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
            );
            let same = base64::Engine::decode(&lenient, &noncanonical).unwrap();
            assert_eq!(same, token.0, "the stray bits change no byte");
            assert_eq!(RefreshToken::parse(&noncanonical), None, "{stray}");
        }
        assert_eq!(RefreshToken::parse(&good), Some(token));
    }

    #[test]
    fn the_successor_is_deterministic_per_family_and_secret_without_the_key() {
        let t = RefreshToken::generate();
        let k1 = new_family_key();
        let k2 = new_family_key();
        assert_eq!(t.successor(&k1), t.successor(&k1));
        assert_ne!(t.successor(&k1), t.successor(&k2));
        assert_ne!(t.successor(&k1), t);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = RefreshToken::generate();
        assert!(!format!("{t:?}").contains(&t.encode()));
    }

    #[test]
    fn cookie_has_exactly_the_host_prefix_attributes() {
        let t = RefreshToken::generate();
        assert_eq!(
            set_cookie(&t, 60),
            format!(
                "__Host-refresh={}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=60",
                t.encode()
            )
        );
    }

    const RULES: SessionRules = SessionRules {
        refresh_ttl: 500,
        grace: 10,
        grace_replays: 3,
        max_age: 5000,
    };

    fn token(expires_at: u64, rotated_at: Option<u64>, family_revoked: bool) -> TokenFacts {
        TokenFacts {
            expires_at,
            rotated_at,
            grace_replays: 0,
            family_revoked,
            session_ends_at: 5000,
            dpop_bound: false,
        }
    }

    #[test]
    fn policy_rotates_current_tolerates_grace_and_revokes_later_replays() {
        let c = |t: TokenFacts, now| classify(&t, now, &RULES, false);
        assert_eq!(c(token(1000, None, false), 100), Presented::Current);
        assert_eq!(
            c(token(1000, Some(100), false), 110),
            Presented::RotatedWithinGrace
        );
        assert_eq!(c(token(1000, Some(100), false), 111), Presented::Replayed);
        assert_eq!(c(token(1000, None, true), 100), Presented::FamilyRevoked);
        assert_eq!(c(token(1000, None, false), 1000), Presented::Expired);
        assert_eq!(c(token(1000, Some(10), false), 1000), Presented::Expired);
    }

    #[test]
    fn grace_replays_beyond_the_cap_are_reuse() {
        let mut t = token(1000, Some(100), false);
        t.grace_replays = 2;
        assert_eq!(
            classify(&t, 105, &RULES, false),
            Presented::RotatedWithinGrace
        );
        t.grace_replays = 3;
        assert_eq!(classify(&t, 105, &RULES, false), Presented::Replayed);
    }

    #[test]
    fn nothing_is_issued_past_the_absolute_session_end() {
        let mut t = token(6000, None, false);
        assert_eq!(classify(&t, 4999, &RULES, false), Presented::Current);
        assert_eq!(classify(&t, 5000, &RULES, false), Presented::SessionEnded);
        // Even a late replay of an ended session revokes nothing.
        t.rotated_at = Some(100);
        assert_eq!(classify(&t, 5000, &RULES, false), Presented::SessionEnded);
        assert_eq!(RULES.token_expiry(4800, 5000), 5000);
        assert_eq!(RULES.token_expiry(100, 5000), 600);
    }

    #[test]
    fn a_bound_family_without_a_proof_is_refused_before_anything_else() {
        let mut t = token(1000, Some(100), false);
        t.dpop_bound = true;
        // Even a late replay revokes nothing without the proof: the family stays intact.
        assert_eq!(classify(&t, 500, &RULES, false), Presented::ProofMissing);
        assert_eq!(classify(&t, 500, &RULES, true), Presented::Replayed);
        t.rotated_at = None;
        assert_eq!(classify(&t, 500, &RULES, false), Presented::ProofMissing);
        assert_eq!(classify(&t, 500, &RULES, true), Presented::Current);
        t.dpop_bound = false;
        assert_eq!(classify(&t, 500, &RULES, false), Presented::Current);
    }
}
