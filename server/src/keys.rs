//! Signing keys: generation, and a key as the store keeps it and as it signs and verifies.
//!
//! Keys live in the store so that a restart keeps every issued token verifiable. The ring
//! of current and retired keys, rotation and the JWKS are `keys/ring.rs`.

mod ring;

pub(crate) use ring::KeyRing;

use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;

use crate::config::SigningAlgorithm;
use crate::store::StoredKey;

/// RSA modulus size: the common floor for RS256 (NIST SP 800-57 through 2030).
const RSA_BITS: usize = 2048;

#[derive(Debug)]
pub(crate) struct KeyError(pub(crate) String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One signing key with everything derived from it.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) alg: SigningAlgorithm,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    jwk: Jwk,
    pub(crate) created_at: u64,
    /// When it stopped signing new tokens; 0 while it is the current key.
    retired_at: AtomicU64,
    /// Latest `exp` of a token this key signed; the key stays published until then.
    last_exp: AtomicU64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new private key, as the DER the store keeps (PKCS#1 for RSA, PKCS#8 otherwise,
    /// which is what jsonwebtoken's `from_*_der` expect).
    pub(crate) fn generate(alg: SigningAlgorithm, now: u64) -> Result<StoredKey, KeyError> {
        let der = match alg {
            SigningAlgorithm::Rs256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)
                    .map_err(|e| KeyError(format!("RSA key generation failed: {e}")))?;
                key.to_pkcs1_der()
                    .map_err(|e| KeyError(format!("RSA key encoding failed: {e}")))?
                    .as_bytes()
                    .to_vec()
            }
            SigningAlgorithm::Es256 => {
                use p256::pkcs8::EncodePrivateKey;
                p256::SecretKey::random(&mut rand::rngs::OsRng)
                    .to_pkcs8_der()
                    .map_err(|e| KeyError(format!("P-256 key encoding failed: {e}")))?
                    .as_bytes()
                    .to_vec()
            }
            SigningAlgorithm::EdDsa => {
                use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
                let mut secret_key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut secret_key);
                // PKCS#8 v1 (no embedded public key): the 48-byte form jsonwebtoken reads.
                let pair = KeypairBytes {
                    secret_key,
                    public_key: None,
                };
                let der = pair
                    .to_pkcs8_der()
                    .map_err(|e| KeyError(format!("Ed25519 key encoding failed: {e}")))?
                    .as_bytes()
                    .to_vec();
                zeroize::Zeroize::zeroize(&mut secret_key);
                der
            }
        };
        let key = Self::from_der(alg, &der, String::new(), now, None, 0)?;
        Ok(StoredKey {
            kid: key.kid.clone(),
            alg: alg.as_str().to_owned(),
            private_der: der,
            created_at: now,
            retired_at: None,
            last_exp: 0,
        })
    }

    pub(crate) fn from_stored(stored: &StoredKey) -> Result<Self, KeyError> {
        let alg: SigningAlgorithm = stored.alg.parse().map_err(KeyError)?;
        Self::from_der(
            alg,
            &stored.private_der,
            stored.kid.clone(),
            stored.created_at,
            stored.retired_at,
            stored.last_exp,
        )
    }

    /// `kid` empty means "derive it": the RFC 7638 thumbprint of the public key.
    fn from_der(
        alg: SigningAlgorithm,
        der: &[u8],
        kid: String,
        created_at: u64,
        retired_at: Option<u64>,
        last_exp: u64,
    ) -> Result<Self, KeyError> {
        let encoding = match alg {
            SigningAlgorithm::Rs256 => EncodingKey::from_rsa_der(der),
            SigningAlgorithm::Es256 => EncodingKey::from_ec_der(der),
            SigningAlgorithm::EdDsa => EncodingKey::from_ed_der(der),
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt())
            .map_err(|e| KeyError(format!("cannot derive the public key: {e}")))?;
        let kid = if kid.is_empty() {
            jwk.thumbprint(ThumbprintHash::SHA256)
                .map_err(|e| KeyError(format!("cannot compute the key thumbprint: {e}")))?
        } else {
            kid
        };
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)
            .map_err(|e| KeyError(format!("cannot build the verifying key: {e}")))?;
        Ok(Self {
            kid,
            alg,
            encoding,
            decoding,
            jwk,
            created_at,
            retired_at: AtomicU64::new(retired_at.unwrap_or(0)),
            last_exp: AtomicU64::new(last_exp),
        })
    }

    /// Notes that a token expiring at `exp` was signed with this key.
    pub(crate) fn record_exp(&self, exp: u64) {
        self.last_exp.fetch_max(exp, Ordering::SeqCst);
    }

    /// Whether this key can still have unexpired tokens (always true for the current key).
    fn published(&self, now: u64) -> bool {
        !self.is_retired() || self.last_exp.load(Ordering::SeqCst) > now
    }

    fn is_retired(&self) -> bool {
        self.retired_at.load(Ordering::SeqCst) != 0
    }
}

#[cfg(test)]
mod tests;
