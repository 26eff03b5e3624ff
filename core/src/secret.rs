//! The access token as a secret value.
//!
//! A bearer token is a credential: whoever holds the string is the user until it expires.
//! The newtype keeps it out of `Debug` output and wipes its bytes when it is dropped or
//! replaced, so a memory dump taken after logout or rotation does not contain it.

use std::fmt;
use zeroize::Zeroize;

/// An access token (a JWT) held in memory.
///
/// `Debug` prints `[redacted]`; the bytes are zeroized when the value is dropped, which is
/// also what happens to the previous token when a session replaces it.
/// A token issued with `token_type: "DPoP"` (RFC 9449) is marked as such: it is bound to the
/// key that signed the proof of its request, and goes out as `Authorization: DPoP` with a proof.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String, bool);

impl AccessToken {
    /// Wraps a bearer token string. The string is moved, not copied.
    pub fn new(token: String) -> Self {
        Self(token, false)
    }

    /// Wraps a token issued with `token_type: "DPoP"`.
    pub fn dpop(token: String) -> Self {
        Self(token, true)
    }

    /// Whether the token is DPoP-bound (`token_type: "DPoP"`), rather than a bearer token.
    pub fn is_dpop(&self) -> bool {
        self.1
    }

    /// The raw token.
    ///
    /// # Security
    /// Whoever reads this string can act as the user until the token expires. Pass it only to
    /// the `Authorization` header of a request to an allowed origin or to a same-origin
    /// BroadcastChannel; never log it, put it in a URL, an error message or any storage.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length in bytes; safe to log.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty token.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl Drop for AccessToken {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_token() {
        let t = AccessToken::new("eyJhbGciOi.secret.part".into());
        let shown = format!("{t:?} {:?}", Some(&t));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn a_dpop_token_says_so_and_a_bearer_token_does_not() {
        assert!(AccessToken::dpop("a.b.c".into()).is_dpop());
        assert!(!AccessToken::new("a.b.c".into()).is_dpop());
        assert_ne!(
            AccessToken::dpop("a.b.c".into()),
            AccessToken::new("a.b.c".into())
        );
    }

    #[test]
    fn expose_secret_returns_the_exact_token() {
        let t = AccessToken::new("a.b.c".into());
        assert_eq!(t.expose_secret(), "a.b.c");
        assert_eq!(t.len(), 5);
    }
}
