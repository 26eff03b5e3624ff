//! Error messages written without `core::fmt`.
//!
//! The browser package shows these messages (the `message` of a `TokenManagerError`); built
//! with `push_str` and [`push_decimal`] instead of `write!`, they keep `core::fmt`'s machinery
//! (the formatter, padding, integer formatting: about 4 KB of wasm) out of the package. Each
//! error's `Display` writes the same text, through [`Message`].

/// The text of an error, for people (never a token, a cookie or a password).
pub trait Message {
    /// Appends the message to `out`.
    fn write_message(&self, out: &mut String);

    /// The message as a new string.
    fn message(&self) -> String {
        let mut out = String::new();
        self.write_message(&mut out);
        out
    }
}

/// Appends `n` in decimal, as `n.to_string()` would.
pub fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// `n` in decimal.
pub fn decimal(n: u64) -> String {
    let mut out = String::new();
    push_decimal(&mut out, n);
    out
}

/// `Display` for types that implement [`Message`]: the same text.
macro_rules! display_as_message {
    ($($t:ty),+ $(,)?) => {
        $(impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$crate::message::Message::message(self))
            }
        })+
    };
}
pub(crate) use display_as_message;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ConfigError;
    use crate::session::{LoginError, RefreshError, TokenError, TransientKind};
    use crate::verify::VerifyError;
    use crate::{DecodeError, Part};

    /// The texts `write!` produced before the messages were written by hand: what apps and
    /// tests may show or match stays the same, and `Display` says the same as `message()`.
    #[test]
    fn every_message_keeps_the_text_the_formatted_display_wrote() {
        #[allow(unused_mut)]
        let mut cases: Vec<((String, String), &str)> = vec![
            (
                both(DecodeError::TooLarge { len: 16_385, max: 16_384 }),
                "token is 16385 bytes, more than the limit of 16384",
            ),
            (
                both(DecodeError::Malformed { segments: 2 }),
                "token must be three non-empty base64url segments separated by dots, found 2 segment(s)",
            ),
            (both(DecodeError::NotUtf8 { part: None }), "token is not valid UTF-8"),
            (
                both(DecodeError::NotUtf8 { part: Some(Part::Claims) }),
                "token claims is not valid UTF-8",
            ),
            (
                both(DecodeError::BadBase64 { part: Part::Signature }),
                "token signature is not unpadded base64url (no '=', '+', '/', whitespace or stray bits)",
            ),
            (
                both(DecodeError::BadJson { part: Part::Header, offset: 0 }),
                "token header is not valid JSON (at byte 0)",
            ),
            (
                both(DecodeError::TooDeep { part: Part::Claims, max: 32 }),
                "token claims nests JSON deeper than 32 levels",
            ),
            (
                both(DecodeError::NotObject { part: Part::Payload }),
                "token payload is not a JSON object",
            ),
            (
                both(DecodeError::Duplicate { part: Part::Claims, name: "exp".into() }),
                "token claims repeats the member \"exp\"",
            ),
            (
                both(DecodeError::ClaimType { claim: "exp", expected: "a NumericDate" }),
                "claim `exp` must be a NumericDate",
            ),
            (
                both(DecodeError::BadHeader { field: "alg" }),
                "token header parameter `alg` is missing or has the wrong type",
            ),
            (
                both(RefreshError::Transient(TransientKind::Server(503))),
                "the refresh endpoint answered 503",
            ),
            (
                both(RefreshError::Rejected(401)),
                "the refresh endpoint refused the session (401)",
            ),
            (
                both(RefreshError::BadToken(TokenError::Decode(DecodeError::NotCompact))),
                "the new token is unusable: a JWS in JSON serialization is not accepted: only the compact serialization (three dot-separated segments)",
            ),
            (both(LoginError::Failed(418)), "the login endpoint answered 418"),
            (
                both(ConfigError { field: "retry_cap", expected: "at least retry_base" }),
                "`retry_cap` must be at least retry_base",
            ),
        ];
        #[cfg(feature = "verify-messages")]
        cases.extend(vec![
            (
                both(TokenError::Unverified(VerifyError::MissingClaim("exp"))),
                "the token has no `exp` claim",
            ),
            (
                both(VerifyError::UntrustedKeyParameter("jku")),
                "the token header carries its own key (`jku`), which is never trusted",
            ),
            (
                both(VerifyError::WeakKey("an RSA modulus below 2048 bits")),
                "the key is too weak: an RSA modulus below 2048 bits",
            ),
            (
                both(VerifyError::BadJwks {
                    key: None,
                    problem: "no `keys` array",
                }),
                "the key set is not a valid JWKS: no `keys` array",
            ),
            (
                both(VerifyError::BadJwks {
                    key: Some(3),
                    problem: "`n` is not base64url",
                }),
                "the key set is not a valid JWKS: key 3: `n` is not base64url",
            ),
        ]);
        for ((message, display), expected) in cases {
            assert_eq!(message, expected);
            assert_eq!(display, expected);
        }
    }

    /// Without `verify-messages` (the browser package's default entry) a verification error
    /// still says what it is, by its code, and a decode error inside one keeps its words.
    #[cfg(not(feature = "verify-messages"))]
    #[test]
    fn without_verify_messages_a_verify_error_names_its_code() {
        assert_eq!(
            both(TokenError::Unverified(VerifyError::MissingClaim("exp"))).0,
            "the token failed verification (missing_claim)"
        );
        assert_eq!(
            both(VerifyError::BadJwks {
                key: Some(3),
                problem: "`n` is not base64url"
            })
            .1,
            "the token failed verification (bad_jwks)"
        );
        assert_eq!(
            VerifyError::Decode(DecodeError::NotCompact).message(),
            DecodeError::NotCompact.message()
        );
    }

    /// The error's `message()` and its `Display`.
    fn both<E: Message + std::fmt::Display>(e: E) -> (String, String) {
        (e.message(), e.to_string())
    }

    #[test]
    fn push_decimal_writes_what_to_string_writes() {
        for n in [0, 1, 9, 10, 99, 100, 418, 86_400, 4_294_967_296, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
        let mut out = String::from("at byte ");
        push_decimal(&mut out, 17);
        assert_eq!(out, "at byte 17");
    }
}
