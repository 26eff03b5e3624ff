//! DPoP (RFC 9449): proofs of possession that bind an access token to a key the client
//! holds, so a stolen token is worthless without the key.
//!
//! This module is the stateless part, public so that a separate API can check the proofs of
//! the tokens this server issues: [`verify_proof`] checks one proof (shape, `typ`, `alg`,
//! `jwk`, signature, `htm`, `htu`, `iat`, `ath`), [`check_resource_request`] is the whole
//! resource-server check of one request (the `DPoP` header, `ath` of the token, the key
//! against the token's `cnf.jkt`). What needs state is the caller's: remember
//! [`Proof::replay_key`] until [`Proof::replay_expires_at`] and refuse a key seen before
//! (the server keeps it in its store, so a replay is refused across instances), and nonces
//! (`nonce.rs`, private to the server).
//!
//! One proof is `proof.rs`, the request side (header, `htu`, the resource-server check)
//! `request.rs`, the `jkt` and `ath` hashes `hashes.rs`, the refusal reasons `refusal.rs`;
//! the server's own checks of its endpoints are `check.rs`.
//!
//! Every refusal is a [`Refusal`]: a stable word for logs ([`Refusal::as_str`]) and a fixed
//! description that is safe to send ([`Refusal::description`]). No input panics.

pub(crate) mod check;
mod hashes;
pub(crate) mod nonce;
mod proof;
mod refusal;
mod request;

pub use hashes::{access_token_hash, jwk_thumbprint};
pub use proof::{verify_proof, Proof, ProofCheck};
pub use refusal::Refusal;
pub use request::{check_resource_request, expected_htu, proof_header};

/// The request header carrying a proof.
pub const DPOP_HEADER: &str = "DPoP";
/// The response header carrying the nonce the next proof must contain.
pub const NONCE_HEADER: &str = "DPoP-Nonce";
/// `token_type` of a token response whose access token is bound to the proof's key.
pub const TOKEN_TYPE_DPOP: &str = "DPoP";
/// `typ` of every proof.
pub const PROOF_TYP: &str = "dpop+jwt";
/// The `algs` of the `WWW-Authenticate: DPoP` challenge: what [`verify_proof`] accepts.
pub const ALGS: &str = "ES256 EdDSA";
/// Longest proof accepted, in bytes. An ES256 proof with `ath` and a nonce is about 700.
pub const MAX_PROOF_BYTES: usize = 4096;
/// Longest `jti` accepted, in bytes.
pub const MAX_JTI_BYTES: usize = 256;
/// `error` of an answer to an invalid proof.
pub const INVALID_DPOP_PROOF: &str = "invalid_dpop_proof";
/// `error` of an answer to a proof without the current nonce (the `DPoP-Nonce` header
/// of the answer has it).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

#[cfg(test)]
mod tests;
