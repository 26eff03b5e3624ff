//! The key ring: the current key (signs new tokens) and the retired keys still needed to
//! verify the tokens they signed; rotation, the sync from a shared store, and the JWKS,
//! which lists exactly the ring.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use super::{KeyError, SigningKey};
use crate::config::SigningAlgorithm;
use crate::store::StoredKey;

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
