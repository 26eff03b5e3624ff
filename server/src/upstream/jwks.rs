//! The provider's signing keys, as its JWKS (discovery's `jwks_uri`) published them. Read
//! at start-up with discovery; an ID token signed by a key they do not hold (the provider
//! rotated its keys since) makes the server read the JWKS again, at most once per
//! [`REFETCH_COOLDOWN`] whatever the number of such tokens, so a stream of forged `kid`s
//! cannot make it hammer the provider. A key that is still not there is still refused.

use std::sync::RwLock;

use openidconnect::core::CoreJsonWebKeySet;

/// Shortest time between two reads of the JWKS for unknown keys (seconds).
pub(crate) const REFETCH_COOLDOWN: u64 = 60;

/// The keys in use, and when they were last read again.
pub(crate) struct ProviderKeys {
    keys: RwLock<CoreJsonWebKeySet>,
    /// Unix seconds of the last read for an unknown key; one read at a time.
    refetched_at: tokio::sync::Mutex<Option<u64>>,
}

impl ProviderKeys {
    pub(crate) fn new(keys: CoreJsonWebKeySet) -> Self {
        Self {
            keys: RwLock::new(keys),
            refetched_at: tokio::sync::Mutex::new(None),
        }
    }

    /// The keys as last read.
    pub(crate) fn current(&self) -> CoreJsonWebKeySet {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the JWKS again with `fetch` unless that was done less than
    /// [`REFETCH_COOLDOWN`] before `now`. `Ok(true)`: the keys were read again (a failed read
    /// counts too: the cooldown spares a provider that is down as well).
    pub(crate) async fn refetch<F, Fut>(&self, now: u64, fetch: F) -> Result<bool, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<CoreJsonWebKeySet, String>>,
    {
        // Held across the read: concurrent tokens with a new `kid` wait for one read and
        // then verify against its result.
        let mut refetched_at = self.refetched_at.lock().await;
        if !refetch_due(*refetched_at, now) {
            return Ok(false);
        }
        *refetched_at = Some(now);
        let fresh = fetch().await?;
        match self.keys.write() {
            Ok(mut keys) => *keys = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(true)
    }
}

/// `true` when no read for an unknown key happened within the cooldown before `now`.
fn refetch_due(last: Option<u64>, now: u64) -> bool {
    last.is_none_or(|at| now >= at.saturating_add(REFETCH_COOLDOWN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_read_the_jwks_again_at_most_once_per_cooldown() {
        assert!(refetch_due(None, 1_000));
        assert!(!refetch_due(Some(1_000), 1_000));
        assert!(!refetch_due(Some(1_000), 1_000 + REFETCH_COOLDOWN - 1));
        assert!(refetch_due(Some(1_000), 1_000 + REFETCH_COOLDOWN));
    }

    #[tokio::test]
    async fn a_second_unknown_key_within_the_cooldown_does_not_read_the_jwks() {
        let keys = ProviderKeys::new(CoreJsonWebKeySet::new(vec![]));
        let reads = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(CoreJsonWebKeySet::new(vec![]))
        };
        assert_eq!(keys.refetch(100, fetch).await, Ok(true));
        assert_eq!(
            keys.refetch(100 + REFETCH_COOLDOWN - 1, fetch).await,
            Ok(false)
        );
        assert_eq!(keys.refetch(100 + REFETCH_COOLDOWN, fetch).await, Ok(true));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
