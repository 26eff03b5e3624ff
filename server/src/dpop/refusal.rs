//! Why a proof was refused: one [`Refusal`] per way a proof or its request can be wrong,
//! each with a stable word for logs, a description safe to send and the `error` code.

use super::{INVALID_DPOP_PROOF, USE_DPOP_NONCE};

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// No `DPoP` header where one is required.
    Missing,
    /// More than one `DPoP` header.
    MultipleProofs,
    /// Longer than [`MAX_PROOF_BYTES`](super::MAX_PROOF_BYTES).
    TooLarge,
    /// Not a compact JWS of strict base64url and JSON with the required members.
    Malformed,
    /// `typ` is not `dpop+jwt`.
    BadTyp,
    /// `alg: none`.
    AlgNone,
    /// An HMAC `alg` (`HS256`…): a symmetric key cannot be public.
    AlgHmac,
    /// Any other `alg` than ES256 and EdDSA.
    UnsupportedAlg,
    /// `jwk` is missing, not a key of the `alg`, or not a valid public key.
    BadJwk,
    /// `jwk` carries private key members.
    PrivateKey,
    /// The signature does not verify with the embedded key.
    BadSignature,
    /// `htm` is not the request's method.
    WrongHtm,
    /// `htu` is not the request's URL.
    WrongHtu,
    /// `iat` is older than the window.
    StaleIat,
    /// `iat` is further ahead than the window.
    FutureIat,
    /// A resource request's proof has no `ath`.
    MissingAth,
    /// `ath` is not the hash of the presented access token.
    WrongAth,
    /// The proof's key is not the one the access token is bound to.
    ThumbprintMismatch,
    /// This key and `jti` were seen within the window.
    ReplayedJti,
    /// Nonces are required and the proof has none.
    MissingNonce,
    /// The proof's nonce is not a current one.
    StaleNonce,
}

impl Refusal {
    /// The stable word logged as `reason=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::MultipleProofs => "multiple_proofs",
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::BadTyp => "bad_typ",
            Self::AlgNone => "alg_none",
            Self::AlgHmac => "alg_hmac",
            Self::UnsupportedAlg => "unsupported_alg",
            Self::BadJwk => "bad_jwk",
            Self::PrivateKey => "private_key",
            Self::BadSignature => "bad_signature",
            Self::WrongHtm => "wrong_htm",
            Self::WrongHtu => "wrong_htu",
            Self::StaleIat => "stale_iat",
            Self::FutureIat => "future_iat",
            Self::MissingAth => "missing_ath",
            Self::WrongAth => "wrong_ath",
            Self::ThumbprintMismatch => "thumbprint_mismatch",
            Self::ReplayedJti => "replayed_jti",
            Self::MissingNonce => "missing_nonce",
            Self::StaleNonce => "stale_nonce",
        }
    }

    /// The fixed `error_description`, one per reason.
    pub fn description(self) -> &'static str {
        match self {
            Self::Missing => "a DPoP proof is required",
            Self::MultipleProofs => "more than one DPoP header",
            Self::TooLarge => "the DPoP proof is too large",
            Self::Malformed => "the DPoP proof is not a well-formed JWS",
            Self::BadTyp => "the DPoP proof's typ must be dpop+jwt",
            Self::AlgNone => "the DPoP proof is unsigned (alg none)",
            Self::AlgHmac => "the DPoP proof uses a symmetric alg",
            Self::UnsupportedAlg => "the DPoP proof's alg must be ES256 or EdDSA",
            Self::BadJwk => "the DPoP proof's jwk is not a public key of its alg",
            Self::PrivateKey => "the DPoP proof's jwk contains private key members",
            Self::BadSignature => "the DPoP proof's signature does not verify",
            Self::WrongHtm => "the DPoP proof's htm is not the request method",
            Self::WrongHtu => "the DPoP proof's htu is not the request URL",
            Self::StaleIat => "the DPoP proof's iat is too old",
            Self::FutureIat => "the DPoP proof's iat is in the future",
            Self::MissingAth => "the DPoP proof has no ath for the access token",
            Self::WrongAth => "the DPoP proof's ath does not match the access token",
            Self::ThumbprintMismatch => "the DPoP proof's key is not the key the token is bound to",
            Self::ReplayedJti => "the DPoP proof was already used (jti replayed)",
            Self::MissingNonce => "the DPoP proof must contain the server's nonce",
            Self::StaleNonce => "the DPoP proof's nonce is not current",
        }
    }

    /// The `error` code of the answer: [`USE_DPOP_NONCE`] for the nonce refusals (the
    /// client retries with the nonce of the answer), [`INVALID_DPOP_PROOF`] otherwise.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::MissingNonce | Self::StaleNonce => USE_DPOP_NONCE,
            _ => INVALID_DPOP_PROOF,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Refusal {}
