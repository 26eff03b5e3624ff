//! Password hashing with argon2id at the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! A login for an unknown user verifies against a dummy hash made with the same
//! parameters, so its timing does not reveal whether the account exists.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Password verifications as they happen, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PasswordHashStats {
    /// Verifications running now.
    pub in_flight: usize,
    /// Most verifications ever running at once.
    pub peak: usize,
    /// Logins waiting for a permit now.
    pub waiting: usize,
    /// Logins that reached the permit stage, in total.
    pub arrived: usize,
}

pub(crate) struct Passwords {
    argon2: Argon2<'static>,
    dummy_hash: String,
    /// Each hash takes 19 MiB and tens of milliseconds; more at once than there are cores
    /// only queues them in memory, so logins wait here instead. The permit is owned by
    /// the blocking job that hashes, so a client that goes away cannot release it early.
    permits: Arc<Semaphore>,
    /// Logins that may wait for a permit; beyond, they are refused at once.
    queue_limit: usize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    waiting: AtomicUsize,
    arrived: AtomicUsize,
    /// While `true`, verifications wait before hashing (tests hold them to observe
    /// how many run at once).
    held: Mutex<bool>,
    released: Condvar,
}

impl Passwords {
    /// `concurrency`: verifications allowed at once (at least 1); `queue_limit`: logins
    /// that may wait for one.
    pub(crate) fn new(concurrency: usize, queue_limit: usize) -> Result<Self, String> {
        let params =
            Params::new(19 * 1024, 2, 1, None).map_err(|e| format!("argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = hash_with(
            &argon2,
            "not a password: only spends the time of a verification",
        )?;
        Ok(Self {
            argon2,
            dummy_hash,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_limit,
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            arrived: AtomicUsize::new(0),
            held: Mutex::new(false),
            released: Condvar::new(),
        })
    }

    /// A permit to hash one password: at once if one is free, else after waiting in the
    /// bounded queue. `None` when the queue is full (the caller answers 503). Dropping
    /// the future while it waits leaves the queue.
    pub(crate) async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => return Some(permit),
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => {}
        }
        let limit = self.queue_limit;
        self.waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        let _slot = QueueSlot(&self.waiting);
        self.permits.clone().acquire_owned().await.ok()
    }

    pub(crate) fn stats(&self) -> PasswordHashStats {
        PasswordHashStats {
            in_flight: self.in_flight.load(Ordering::SeqCst),
            peak: self.peak.load(Ordering::SeqCst),
            waiting: self.waiting.load(Ordering::SeqCst),
            arrived: self.arrived.load(Ordering::SeqCst),
        }
    }

    /// Holds (or releases) every verification before it hashes.
    pub(crate) fn hold(&self, hold: bool) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = hold;
        self.released.notify_all();
    }

    fn wait_while_held(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        while *held {
            held = self.released.wait(held).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub(crate) fn hash(&self, password: &str) -> Result<String, String> {
        hash_with(&self.argon2, password)
    }

    /// `true` if `password` matches `stored`. With `stored = None` (no such user) the
    /// same work is done against the dummy hash and the answer is `false`.
    pub(crate) fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.wait_while_held();
        let ok = self.verify_unmetered(password, stored);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        ok
    }

    fn verify_unmetered(&self, password: &str, stored: Option<&str>) -> bool {
        let (hash, real) = match stored {
            Some(h) => (h, true),
            None => (self.dummy_hash.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        // argon2's verification compares the outputs in constant time.
        let ok = self
            .argon2
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && real
    }
}

/// One place in the queue of waiting logins, given back however the wait ends.
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> Result<String, String> {
    argon2
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2 hashing failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let p = Passwords::new(1, 0).unwrap();
        let h = p.hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p.verify("correct horse", Some(&h)));
        assert!(!p.verify("wrong horse", Some(&h)));
        assert!(!p.verify("correct horse", None));
        assert!(!p.verify("x", Some("not a phc string")));
    }
}
