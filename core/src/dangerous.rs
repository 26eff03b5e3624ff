//! Decoding a token **without verifying its signature**.
//!
//! DANGER: nothing here proves who made the token. Anyone can write a JWT with any claims.
//! Use the result to schedule refreshes and to show the user their name — never to decide
//! what the user may do. Authorization decisions belong to the server, which verifies.
//!
//! Decoding is strict and bounded: the length is checked before anything is parsed, the token
//! must be exactly three segments of canonical unpadded base64url, JSON nesting is capped,
//! duplicate member names are refused, and each kind of bad input has its own [`DecodeError`]
//! with a stable code. No input panics (see the fuzz target in `core/fuzz/`).
//!
//! `jsonwebtoken::dangerous::insecure_decode` is not used for this because it splits from the
//! right (so four segments decode), resolves duplicate claims silently and reports every
//! problem as the same generic error; its [`jsonwebtoken::Algorithm`] is used for `alg`.

use crate::claims::Claims;
use crate::error::{DecodeError, Part};
use crate::header::Header;
use crate::json::{base64url, parse_object};

/// Bounds applied before and during decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Longest token accepted, in bytes. Defaults to 16 KiB (16384): real access tokens are
    /// 0.5–2 KiB, and browsers and proxies cap headers around 8–16 KiB anyway.
    pub max_len: usize,
    /// Deepest JSON nesting accepted in the header and the claims. Defaults to 32.
    pub max_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_len: 16 * 1024,
            max_depth: 32,
        }
    }
}

/// A decoded token whose signature has **not** been checked.
#[derive(Clone, Debug, PartialEq)]
pub struct UnverifiedToken {
    /// The JOSE header.
    pub header: Header,
    /// The claims.
    pub claims: Claims,
    /// The decoded signature bytes (empty for an empty third segment).
    pub signature: Vec<u8>,
    /// Length of the signing input (`header.claims`), the prefix of the token a signature covers.
    pub signing_input_len: usize,
}

/// Decodes a token with the default [`DecodeLimits`], without verifying it.
///
/// DANGER: see the [module documentation](self).
pub fn decode_unverified(token: impl AsRef<[u8]>) -> Result<UnverifiedToken, DecodeError> {
    decode_unverified_with(token.as_ref(), &DecodeLimits::default())
}

/// Decodes a token with explicit limits, without verifying it.
///
/// DANGER: see the [module documentation](self).
pub fn decode_unverified_with(
    token: &[u8],
    limits: &DecodeLimits,
) -> Result<UnverifiedToken, DecodeError> {
    if token.len() > limits.max_len {
        return Err(DecodeError::TooLarge {
            len: token.len(),
            max: limits.max_len,
        });
    }
    if std::str::from_utf8(token).is_err() {
        return Err(DecodeError::NotUtf8 { part: None });
    }
    let segments = token.split(|b| *b == b'.').count();
    let mut parts = token.split(|b| *b == b'.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DecodeError::Malformed { segments });
    };
    if header.is_empty() || claims.is_empty() {
        return Err(DecodeError::Malformed { segments });
    }

    let header_json = base64url(header, Part::Header)?;
    let claims_json = base64url(claims, Part::Claims)?;
    let signature_bytes = base64url(signature, Part::Signature)?;

    let header = Header::from_object(parse_object(&header_json, limits.max_depth, Part::Header)?)?;
    let claims = Claims::from_object(parse_object(&claims_json, limits.max_depth, Part::Claims)?)?;
    Ok(UnverifiedToken {
        header,
        claims,
        signature: signature_bytes,
        signing_input_len: token.len() - signature.len() - 1,
    })
}
