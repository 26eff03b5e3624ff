//! Password hashing with argon2id at the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! A login for an unknown user verifies against a dummy hash made with the same
//! parameters, so its timing does not reveal whether the account exists.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

pub(crate) struct Passwords {
    argon2: Argon2<'static>,
    dummy_hash: String,
    /// Each hash takes 19 MiB and tens of milliseconds; more at once than there are cores
    /// only queues them in memory, so logins wait here instead.
    pub(crate) permits: Semaphore,
}

impl Passwords {
    pub(crate) fn new() -> Result<Self, String> {
        let params =
            Params::new(19 * 1024, 2, 1, None).map_err(|e| format!("argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = hash_with(
            &argon2,
            "not a password: only spends the time of a verification",
        )?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            argon2,
            dummy_hash,
            permits: Semaphore::new(cores),
        })
    }

    pub(crate) fn hash(&self, password: &str) -> Result<String, String> {
        hash_with(&self.argon2, password)
    }

    /// `true` if `password` matches `stored`. With `stored = None` (no such user) the
    /// same work is done against the dummy hash and the answer is `false`.
    pub(crate) fn verify(&self, password: &str, stored: Option<&str>) -> bool {
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
        let p = Passwords::new().unwrap();
        let h = p.hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p.verify("correct horse", Some(&h)));
        assert!(!p.verify("wrong horse", Some(&h)));
        assert!(!p.verify("correct horse", None));
        assert!(!p.verify("x", Some("not a phc string")));
    }
}
