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
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token string. The string is moved, not copied.
    pub fn new(token: String) -> Self {
        Self(token)
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
    fn expose_secret_returns_the_exact_token() {
        let t = AccessToken::new("a.b.c".into());
        assert_eq!(t.expose_secret(), "a.b.c");
        assert_eq!(t.len(), 5);
    }
}
