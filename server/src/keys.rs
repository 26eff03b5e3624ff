//! Signing keys: generation, the in-memory key ring, rotation and the JWKS.
//!
//! Keys live in SQLite so that a restart keeps every issued token verifiable. The ring
//! holds the current key (signs new tokens) and retired keys (verify old tokens) until the
//! last token a retired key signed has expired; the JWKS lists exactly the ring.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

struct Ring {
    current: Arc<SigningKey>,
    by_kid: HashMap<String, Arc<SigningKey>>,
}

/// The current key and the retired keys still needed for verification.
pub(crate) struct KeyRing {
    ring: RwLock<Ring>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing")
    }
}

impl KeyRing {
    /// Builds the ring from stored keys. `None` when no current key of `alg` exists
    /// (first start, or the algorithm was changed): the caller generates one.
    pub(crate) fn from_stored(
        stored: &[StoredKey],
        alg: SigningAlgorithm,
    ) -> Result<Option<Self>, KeyError> {
        let mut by_kid = HashMap::new();
        let mut current = None;
        for s in stored {
            let key = Arc::new(SigningKey::from_stored(s)?);
            if !key.is_retired() && key.alg == alg {
                current = Some(key.clone());
            }
            by_kid.insert(key.kid.clone(), key);
        }
        Ok(current.map(|current| Self {
            ring: RwLock::new(Ring { current, by_kid }),
        }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        // The ring is only swapped wholesale; a panic elsewhere cannot leave it half-written.
        self.ring.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.ring.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn current(&self) -> Arc<SigningKey> {
        self.read().current.clone()
    }

    /// A key that may verify a token presented at `now`. Keys whose last token expired
    /// are gone even before the cleanup task deletes their rows.
    pub(crate) fn find(&self, kid: &str, now: u64) -> Option<Arc<SigningKey>> {
        self.read()
            .by_kid
            .get(kid)
            .filter(|k| k.published(now))
            .cloned()
    }

    /// A loaded key by `kid`, published or not (the signer looks up the key its
    /// transaction chose).
    pub(crate) fn get(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.read().by_kid.get(kid).cloned()
    }

    /// Keeps `kid` published until at least `exp`; `false` if no such key is loaded.
    /// Called inside the transaction that records the same expiry in the store.
    pub(crate) fn pin(&self, kid: &str, exp: u64) -> bool {
        match self.read().by_kid.get(kid) {
            Some(key) => {
                key.record_exp(exp);
                true
            }
            None => false,
        }
    }

    /// Loads `new` before the store makes it current, so that a transaction which
    /// chooses it from the database always finds it here. Published from now on (a key
    /// in the JWKS shortly before its first token is harmless).
    pub(crate) fn preload(&self, new: SigningKey) -> Arc<SigningKey> {
        let new = Arc::new(new);
        self.write().by_kid.insert(new.kid.clone(), new.clone());
        new
    }

    /// Forgets a preloaded key whose installation failed.
    pub(crate) fn unload(&self, kid: &str) {
        let mut ring = self.write();
        if ring.current.kid != kid {
            ring.by_kid.remove(kid);
        }
    }

    /// Makes the preloaded `new` the signing key; the previous current key is retired at
    /// `now`. The store must already have committed the same change.
    pub(crate) fn install(&self, new: Arc<SigningKey>, now: u64) {
        let mut ring = self.write();
        for key in ring.by_kid.values() {
            if key.kid == new.kid {
                continue;
            }
            // compare_exchange: a key retired earlier keeps its original retirement time.
            let _ =
                key.retired_at
                    .compare_exchange(0, now.max(1), Ordering::SeqCst, Ordering::SeqCst);
        }
        ring.by_kid.insert(new.kid.clone(), new.clone());
        ring.current = new;
    }

    /// Brings the ring in line with the keys a shared store holds (another instance may
    /// have rotated): loads keys it lacks, retires what the store retired, raises the
    /// recorded expiries, and makes the store's current key current. Never drops a key
    /// (purging is [`Self::purge`]'s, on the store's word).
    pub(crate) fn sync(&self, stored: &[StoredKey]) -> Result<(), KeyError> {
        let mut loaded = Vec::new();
        {
            let ring = self.read();
            for s in stored {
                if !ring.by_kid.contains_key(&s.kid) {
                    loaded.push(Arc::new(SigningKey::from_stored(s)?));
                }
            }
        }
        let mut ring = self.write();
        for key in loaded {
            ring.by_kid.entry(key.kid.clone()).or_insert(key);
        }
        let mut current = None;
        for s in stored {
            let Some(key) = ring.by_kid.get(&s.kid) else {
                continue;
            };
            key.record_exp(s.last_exp);
            match s.retired_at {
                Some(at) => {
                    let _ = key.retired_at.compare_exchange(
                        0,
                        at.max(1),
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
                // Retirement only ever moves forward: a key this ring has retired never
                // signs again. A snapshot read before this instance's own rotation
                // committed (a periodic sync racing `install`) still lists the old key as
                // current, and must not bring it back.
                None if !key.is_retired() => current = Some(key.clone()),
                None => {}
            }
        }
        if let Some(current) = current {
            ring.current = current;
        }
        Ok(())
    }

    /// Forgets the keys the store has just deleted (and only those: the store decides
    /// from the last expiry it recorded). Returns how many were dropped.
    pub(crate) fn purge(&self, deleted: &[String]) -> usize {
        let mut ring = self.write();
        let before = ring.by_kid.len();
        let current = ring.current.kid.clone();
        ring.by_kid
            .retain(|kid, _| *kid == current || !deleted.contains(kid));
        before - ring.by_kid.len()
    }

    /// The public JWK Set: current key first, then retired keys still in use.
    pub(crate) fn jwks(&self, now: u64) -> serde_json::Value {
        let ring = self.read();
        let mut keys: Vec<&Arc<SigningKey>> =
            ring.by_kid.values().filter(|k| k.published(now)).collect();
        keys.sort_by_key(|k| (k.is_retired(), std::cmp::Reverse(k.created_at)));
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .filter_map(|k| serde_json::to_value(&k.jwk).ok())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `StoredKey` is not `Clone` (it zeroizes its private key on drop): a copy for tests.
    fn copy(k: &StoredKey, retired_at: Option<u64>) -> StoredKey {
        StoredKey {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            private_der: k.private_der.clone(),
            created_at: k.created_at,
            retired_at,
            last_exp: k.last_exp,
        }
    }

    #[test]
    fn a_sync_from_a_snapshot_older_than_a_rotation_keeps_the_new_key_current() {
        let alg = SigningAlgorithm::ALL[0];
        let old = SigningKey::generate(alg, 100).unwrap();
        let ring = KeyRing::from_stored(std::slice::from_ref(&old), alg)
            .unwrap()
            .unwrap();
        // The store snapshot a periodic sync read before the rotation below committed.
        let stale = vec![copy(&old, None)];
        let new = SigningKey::generate(alg, 200).unwrap();
        let new_kid = new.kid.clone();
        let key = ring.preload(SigningKey::from_stored(&new).unwrap());
        ring.install(key, 200);
        ring.sync(&stale).unwrap();
        assert_eq!(
            ring.current().kid,
            new_kid,
            "the stale snapshot revived the old key"
        );
        // A snapshot that has the rotation agrees, and one from another instance's later
        // rotation still moves the ring on.
        let retired = copy(&old, Some(200));
        ring.sync(&[copy(&retired, Some(200)), copy(&new, None)])
            .unwrap();
        assert_eq!(ring.current().kid, new_kid);
        let newer = SigningKey::generate(alg, 300).unwrap();
        let new_retired = copy(&new, Some(300));
        ring.sync(&[retired, new_retired, copy(&newer, None)])
            .unwrap();
        assert_eq!(ring.current().kid, newer.kid);
    }

    #[test]
    fn every_algorithm_generates_a_key_that_round_trips_through_storage() {
        for alg in SigningAlgorithm::ALL {
            let stored = SigningKey::generate(alg, 100).unwrap();
            let key = SigningKey::from_stored(&stored).unwrap();
            assert_eq!(key.kid, stored.kid);
            assert_eq!(key.alg, alg);
            let jwk = serde_json::to_value(&key.jwk).unwrap();
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["kid"], key.kid.as_str());
            assert_eq!(jwk["use"], "sig");
            let text = jwk.to_string();
            assert!(
                !text.contains("\"d\""),
                "private part leaked into the JWK: {text}"
            );
        }
    }
}
