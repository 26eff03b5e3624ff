//! Errors of token decoding, each with a stable code.
//!
//! The code strings are part of the public contract: the browser layer forwards them as the
//! `code` of the errors it throws, and applications switch on them. Messages never contain the
//! token or a claim value, only the names of the parts involved.

use crate::code::ErrorCode;
use crate::message::{display_as_message, push_decimal, Message};

/// Which part of a compact JWT an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The first segment, the JOSE header.
    Header,
    /// The second segment, the claims set.
    Claims,
    /// The third segment, the signature.
    Signature,
    /// The second segment of a JWS that is not read as a JWT: the payload, any bytes.
    Payload,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Header => "header",
            Part::Claims => "claims",
            Part::Signature => "signature",
            Part::Payload => "payload",
        }
    }
}

/// Why a token could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The token is longer than the configured limit (checked before anything else).
    TooLarge {
        /// Length of the input in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The token is not three dot-separated segments with a non-empty header and claims.
    Malformed {
        /// Number of segments found.
        segments: usize,
    },
    /// The input is a JWS in JSON serialization (it starts with `{`): only the compact
    /// serialization is accepted.
    NotCompact,
    /// The token, or a decoded segment, is not valid UTF-8.
    NotUtf8 {
        /// The part; `None` for the token text itself.
        part: Option<Part>,
    },
    /// A segment is not strict unpadded base64url (RFC 7515 §2): padding, `+`, `/`,
    /// whitespace and non-zero trailing bits are all refused.
    BadBase64 {
        /// The segment.
        part: Part,
    },
    /// A segment is not valid JSON.
    BadJson {
        /// The segment.
        part: Part,
        /// Byte offset of the first error in the decoded JSON.
        offset: usize,
    },
    /// JSON nested deeper than the configured limit.
    TooDeep {
        /// The segment.
        part: Part,
        /// The limit.
        max: usize,
    },
    /// The segment is valid JSON but not an object.
    NotObject {
        /// The segment.
        part: Part,
    },
    /// The same member name appears twice in the header or the claims (RFC 7515 §4, RFC 7519 §4
    /// allow refusing such a token; different parsers would pick different values).
    Duplicate {
        /// The segment.
        part: Part,
        /// The repeated name, truncated to 64 bytes.
        name: String,
    },
    /// A registered claim has the wrong JSON type or an out-of-range value. A time claim that is
    /// a string, `null`, an array, negative or beyond year 9999 is this error, never "absent".
    ClaimType {
        /// The claim name (`exp`, `aud` …).
        claim: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// A header parameter has the wrong type, or `alg` is missing.
    BadHeader {
        /// The parameter name.
        field: &'static str,
    },
    /// `alg` is not a known signature algorithm. `none` in any spelling is always this error.
    UnsupportedAlgorithm,
}

impl DecodeError {
    /// The stable code of this error (its string: [`DecodeError::code`]).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::TooLarge { .. } => ErrorCode::TooLarge,
            DecodeError::Malformed { .. } => ErrorCode::MalformedToken,
            DecodeError::NotCompact => ErrorCode::NotCompact,
            DecodeError::NotUtf8 { .. } => ErrorCode::NotUtf8,
            DecodeError::BadBase64 { .. } => ErrorCode::BadBase64,
            DecodeError::BadJson { .. } => ErrorCode::BadJson,
            DecodeError::TooDeep { .. } => ErrorCode::TooDeep,
            DecodeError::NotObject { .. } => ErrorCode::NotObject,
            DecodeError::Duplicate { .. } => ErrorCode::DuplicateClaim,
            DecodeError::ClaimType { .. } => ErrorCode::ClaimType,
            DecodeError::BadHeader { .. } => ErrorCode::BadHeader,
            DecodeError::UnsupportedAlgorithm => ErrorCode::UnsupportedAlg,
        }
    }

    /// The stable code of this error, e.g. `"malformed_token"`.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }
}

impl Message for DecodeError {
    fn write_message(&self, out: &mut String) {
        let part = |out: &mut String, p: &Part, then: &str| {
            out.push_str("token ");
            out.push_str(p.name());
            out.push_str(then);
        };
        match self {
            DecodeError::TooLarge { len, max } => {
                out.push_str("token is ");
                push_decimal(out, *len as u64);
                out.push_str(" bytes, more than the limit of ");
                push_decimal(out, *max as u64);
            }
            DecodeError::Malformed { segments } => {
                out.push_str(
                    "token must be three non-empty base64url segments separated by dots, found ",
                );
                push_decimal(out, *segments as u64);
                out.push_str(" segment(s)");
            }
            DecodeError::NotCompact => out.push_str(
                "a JWS in JSON serialization is not accepted: only the compact serialization (three dot-separated segments)",
            ),
            DecodeError::NotUtf8 { part: None } => out.push_str("token is not valid UTF-8"),
            DecodeError::NotUtf8 { part: Some(p) } => part(out, p, " is not valid UTF-8"),
            DecodeError::BadBase64 { part: p } => part(
                out,
                p,
                " is not unpadded base64url (no '=', '+', '/', whitespace or stray bits)",
            ),
            DecodeError::BadJson { part: p, offset } => {
                part(out, p, " is not valid JSON (at byte ");
                push_decimal(out, *offset as u64);
                out.push(')');
            }
            DecodeError::TooDeep { part: p, max } => {
                part(out, p, " nests JSON deeper than ");
                push_decimal(out, *max as u64);
                out.push_str(" levels");
            }
            DecodeError::NotObject { part: p } => part(out, p, " is not a JSON object"),
            DecodeError::Duplicate { part: p, name } => {
                part(out, p, " repeats the member \"");
                out.push_str(name);
                out.push('"');
            }
            DecodeError::ClaimType { claim, expected } => {
                out.push_str("claim `");
                out.push_str(claim);
                out.push_str("` must be ");
                out.push_str(expected);
            }
            DecodeError::BadHeader { field } => {
                out.push_str("token header parameter `");
                out.push_str(field);
                out.push_str("` is missing or has the wrong type");
            }
            DecodeError::UnsupportedAlgorithm => out.push_str(
                "token header `alg` is not a supported signature algorithm (`none` is never accepted)",
            ),
        }
    }
}

display_as_message!(DecodeError);

impl std::error::Error for DecodeError {}
