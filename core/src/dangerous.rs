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

use std::borrow::Cow;

use crate::claims::Claims;
use crate::error::{DecodeError, Part};
use crate::header::Header;
use crate::json::{base64url, is_base64url, members, scan_claims};
use crate::message::push_decimal;

/// Bounds applied before and during decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Longest token accepted, in bytes. Defaults to 16 KiB (16384): real access tokens are
    /// 0.5–2 KiB, and browsers and proxies cap headers around 8–16 KiB anyway.
    pub max_len: usize,
    /// Deepest JSON nesting accepted in the header and the claims. Defaults to 32.
    pub max_depth: usize,
}

impl DecodeLimits {
    /// The defaults, as a constant (for a buffer sized by them).
    pub const DEFAULT: Self = Self {
        max_len: 16 * 1024,
        max_depth: 32,
    };
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self::DEFAULT
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

impl UnverifiedToken {
    /// Reads the payload of a decoded JWS as a JWT claims set: a JWT is a JWS whose payload is
    /// a non-empty JSON object of claims. Nesting is capped at `max_depth`.
    ///
    /// DANGER: see the [module documentation](self). A verifier calls this only after the
    /// signature verified, so the claims of an unauthenticated payload are never parsed.
    pub fn from_jws(jws: UnverifiedJws, max_depth: usize) -> Result<Self, DecodeError> {
        if jws.payload.is_empty() {
            return Err(DecodeError::Malformed { segments: 3 });
        }
        let claims = parse_claims(&jws.payload, max_depth)?;
        Ok(UnverifiedToken {
            header: jws.header,
            claims,
            signature: jws.signature,
            signing_input_len: jws.signing_input_len,
        })
    }
}

/// A decoded JWS in compact serialization (RFC 7515 §7.1) whose signature has **not** been
/// checked. The payload is kept exactly as signed: it may be empty or any bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct UnverifiedJws {
    /// The protected header, typed.
    pub header: Header,
    /// The protected header as its decoded JSON text (strict, valid UTF-8), every member kept.
    pub header_json: String,
    /// The payload bytes, never parsed.
    pub payload: Vec<u8>,
    /// The decoded signature bytes (empty for an empty third segment).
    pub signature: Vec<u8>,
    /// Length of the signing input (`header.payload`), the prefix of the JWS a signature covers.
    pub signing_input_len: usize,
}

impl AsRef<Header> for UnverifiedToken {
    fn as_ref(&self) -> &Header {
        &self.header
    }
}

impl AsRef<Header> for UnverifiedJws {
    fn as_ref(&self) -> &Header {
        &self.header
    }
}

/// Decodes a token with the default [`DecodeLimits`], without verifying it.
///
/// DANGER: see the [module documentation](self).
pub fn decode_unverified(token: impl AsRef<[u8]>) -> Result<UnverifiedToken, DecodeError> {
    decode_unverified_with(token.as_ref(), &DecodeLimits::default())
}

/// Decodes a token with explicit limits, without verifying it: the compact JWS decoding of
/// [`decode_jws_unverified`], then the payload as a claims set ([`UnverifiedToken::from_jws`]).
///
/// DANGER: see the [module documentation](self).
pub fn decode_unverified_with(
    token: &[u8],
    limits: &DecodeLimits,
) -> Result<UnverifiedToken, DecodeError> {
    let jws = decode_compact(token, limits, Part::Claims)?;
    UnverifiedToken::from_jws(jws, limits.max_depth)
}

/// Reads a claims set given as JSON text rather than inside a JWT — the `id_token_claims` a
/// token-mediating backend sends beside an opaque access token — with the same caps and
/// strictness as a token's claims: at most `limits.max_len` bytes (`too_large`), nesting capped
/// at `limits.max_depth`, duplicate names refused, registered claims strictly typed.
///
/// DANGER: see the [module documentation](self). Nothing here proves who wrote the text.
pub fn claims_from_json_unverified(
    json: &[u8],
    limits: &DecodeLimits,
) -> Result<Claims, DecodeError> {
    if json.len() > limits.max_len {
        return Err(DecodeError::TooLarge {
            len: json.len(),
            max: limits.max_len,
        });
    }
    parse_claims(json, limits.max_depth)
}

/// The claims of a token as JSON text for the UI's `JSON.parse`, with the default
/// [`DecodeLimits`] — accepted and refused exactly as [`decode_unverified`] accepts and
/// refuses, with the same errors, and the same text as [`ClaimsJsonDecoder::decode`]. This
/// runs the full decoder every time, with no fast path and no memory of headers: for the odd
/// token (the browser package takes it for tokens its own split did not take); many tokens of
/// one issuer decode faster through a [`ClaimsJsonDecoder`].
///
/// DANGER: see the [module documentation](self).
pub fn claims_json_unverified(token: impl AsRef<[u8]>) -> Result<String, DecodeError> {
    let limits = DecodeLimits::DEFAULT;
    let jws = decode_compact(token.as_ref(), &limits, Part::Claims)?;
    let text = ClaimsJsonDecoder::claims_text(&jws.payload).map(Cow::into_owned);
    let token = UnverifiedToken::from_jws(jws, limits.max_depth)?;
    Ok(text.unwrap_or_else(|| token.claims.to_json()))
}

/// Decodes tokens' claims as JSON text for the UI's `JSON.parse` (`decodeClaims`), accepting
/// and refusing exactly what [`decode_unverified`] does, with the same errors, under the
/// default [`DecodeLimits`].
///
/// The text is the token's own decoded claims, members in the token's order, except that a
/// time claim (`exp`, `nbf`, `iat`) not written as a plain integer (`1.9e1`, `1900.5`) is
/// written as its whole seconds, as [`Claims`] reads it. So `JSON.parse` gives the object
/// [`Claims::to_json`] describes, in the token's member order rather than registered claims
/// first. A validating scan checks the text without building a [`crate::Value`] for each
/// member; only a token it refuses goes through the full decoder, which names the error.
/// The decoder remembers the last header segment that passed its checks (the tokens of one
/// issuer share it), so the same header is not read again.
///
/// DANGER: see the [module documentation](self).
#[derive(Clone, Debug, Default)]
pub struct ClaimsJsonDecoder {
    /// The last header segment (base64url text) that passed every header check.
    checked_header: Vec<u8>,
}

impl ClaimsJsonDecoder {
    /// A decoder that remembers no header yet (`const`, for a `static`).
    pub const fn new() -> Self {
        Self {
            checked_header: Vec::new(),
        }
    }

    /// The claims of `token` as JSON text, or the error [`decode_unverified`] gives.
    pub fn decode(&mut self, token: &[u8]) -> Result<String, DecodeError> {
        let limits = DecodeLimits::default();
        match self.scanned(token, &limits) {
            Some(json) => Ok(json),
            None => decode_unverified_with(token, &limits).map(|t| t.claims.to_json()),
        }
    }

    /// The fast path: `None` for anything the full decoder might refuse. A token whose
    /// segments are base64url is ASCII, so the token's UTF-8 check and the `not_compact` check
    /// (`{` or whitespace first) are covered by the base64url checks.
    fn scanned(&mut self, token: &[u8], limits: &DecodeLimits) -> Option<String> {
        if token.len() > limits.max_len {
            return None;
        }
        // Two dots; a third is refused with the signature, where `.` is not base64url.
        let dot = |s: &[u8]| s.iter().position(|b| *b == b'.');
        let first = dot(token)?;
        let (header, rest) = (&token[..first], &token[first + 1..]);
        let second = dot(rest)?;
        let (payload, signature) = (&rest[..second], &rest[second + 1..]);
        if header.is_empty() || payload.is_empty() || !is_base64url(signature) {
            return None;
        }
        if header != self.checked_header.as_slice() {
            read_header(&base64url(header, Part::Header).ok()?, limits.max_depth).ok()?;
            self.checked_header.clear();
            self.checked_header.extend_from_slice(header);
        }
        let json = base64url(payload, Part::Claims).ok()?;
        if let Cow::Owned(rewritten) = Self::claims_text(&json)? {
            return Some(rewritten);
        }
        String::from_utf8(json).ok()
    }

    /// The second half of [`decode`](Self::decode)'s fast path, for a caller that split the
    /// token and decoded its payload itself (the browser package does, with the page's native
    /// base64): the decoded payload `json` as the claims text `decode` gives, or `None` for
    /// anything the full decoder might refuse. The caller must also have checked everything
    /// `decode` checks before it: the length, the three segments of strict canonical unpadded
    /// base64url, and a header that passed [`decode`](Self::decode) before. Borrowed unless a
    /// time claim has to be rewritten as an integer.
    pub fn claims_text(json: &[u8]) -> Option<Cow<'_, str>> {
        let json = std::str::from_utf8(json).ok()?;
        let times = scan_claims(json.as_bytes(), DecodeLimits::DEFAULT.max_depth)?;
        if times.is_empty() {
            return Some(Cow::Borrowed(json));
        }
        // Rare: a time claim such as `1.9e1` is written as the integer the claims hold.
        let mut out = String::with_capacity(json.len());
        let mut at = 0;
        for (start, end, secs) in times {
            out.push_str(json.get(at..start)?);
            push_decimal(&mut out, secs);
            at = end;
        }
        out.push_str(json.get(at..)?);
        Some(Cow::Owned(out))
    }
}

/// A claims set from its JSON text: the one parse behind a JWT's claims and claims given as
/// JSON, so both get the same checks (and the package one copy of them).
fn parse_claims(json: &[u8], max_depth: usize) -> Result<Claims, DecodeError> {
    Claims::from_members(members(json, max_depth, Part::Claims)?)
}

/// Decodes a JWS in compact serialization with explicit limits, without verifying it.
///
/// Exactly three segments (`malformed_token` otherwise); the JSON serialization (input that
/// starts with `{`) is `not_compact`; the header must be non-empty strict base64url of a JSON
/// object; the payload may be empty and is decoded but never parsed.
///
/// DANGER: see the [module documentation](self).
pub fn decode_jws_unverified(
    jws: &[u8],
    limits: &DecodeLimits,
) -> Result<UnverifiedJws, DecodeError> {
    decode_compact(jws, limits, Part::Payload)
}

/// A decoded header segment as a [`Header`]: one copy of the header's checks for both decoders.
fn read_header(json: &[u8], max_depth: usize) -> Result<Header, DecodeError> {
    Header::from_members(members(json, max_depth, Part::Header)?)
}

/// The one compact decoder behind both entry points; `payload_part` names the middle segment
/// in errors (`claims` for a JWT, `payload` for a JWS).
fn decode_compact(
    token: &[u8],
    limits: &DecodeLimits,
    payload_part: Part,
) -> Result<UnverifiedJws, DecodeError> {
    if token.len() > limits.max_len {
        return Err(DecodeError::TooLarge {
            len: token.len(),
            max: limits.max_len,
        });
    }
    if std::str::from_utf8(token).is_err() {
        return Err(DecodeError::NotUtf8 { part: None });
    }
    // `{` never starts base64url: this is a JWS (or JWE) in JSON serialization.
    if token.trim_ascii_start().first() == Some(&b'{') {
        return Err(DecodeError::NotCompact);
    }
    let segments = token.split(|b| *b == b'.').count();
    let mut parts = token.split(|b| *b == b'.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DecodeError::Malformed { segments });
    };
    // An empty payload is a valid JWS; an empty claims set is never a valid JWT, and saying
    // so before the header is decoded keeps the JWT codes what they always were.
    if header.is_empty() || (payload.is_empty() && payload_part == Part::Claims) {
        return Err(DecodeError::Malformed { segments });
    }

    let header_json = base64url(header, Part::Header)?;
    let payload_bytes = base64url(payload, payload_part)?;
    let signature_bytes = base64url(signature, Part::Signature)?;

    let header = read_header(&header_json, limits.max_depth)?;
    Ok(UnverifiedJws {
        header,
        // `members` accepted it, so it is UTF-8.
        header_json: String::from_utf8(header_json).unwrap_or_default(),
        payload: payload_bytes,
        signature: signature_bytes,
        signing_input_len: token.len() - signature.len() - 1,
    })
}
