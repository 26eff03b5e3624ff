//! Storage of user accounts, refresh families, the `jti` denylist, login-throttling
//! counters and signing keys, behind one interface ([`Store`]) with two backends:
//! SQLite (embedded, the default) and Redis (one server or a Redis Cluster, shared by
//! several server instances).
//!
//! The policy stays out of the backends: which presented token is current, within the
//! grace window or replayed is decided by [`crate::refresh::classify`], the throttle by
//! [`crate::throttle::Policy`]. A backend reads the facts and applies the decision
//! atomically (a SQLite transaction; a Redis Lua script that refuses to apply a decision
//! made on facts that changed meanwhile).
//!
//! Every method blocks: callers run it on tokio's blocking pool, as they did when SQLite
//! was the only backend.

mod error;
mod kek;
mod redis;
mod spec;
mod sqlite;

pub(crate) use error::{Result, StoreError};
pub use kek::{KeyEncryptionKey, KEK_ENV};
pub(crate) use redis::RedisStore;
pub use spec::{StoreSpec, STORE_ENV};
pub(crate) use sqlite::SqliteStore;

use crate::refresh::{RefreshToken, SessionRules, TokenHash};
use crate::throttle::{Counter, Write};

/// How many links a grace-window replay may follow to reach the current token. A chain
/// longer than this within one grace window is not a browser; refuse rather than loop.
pub(crate) const MAX_CHAIN: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) username: String,
    pub(crate) password_hash: String,
    pub(crate) name: String,
    pub(crate) roles: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct StoredKey {
    pub(crate) kid: String,
    pub(crate) alg: String,
    pub(crate) private_der: Vec<u8>,
    pub(crate) created_at: u64,
    pub(crate) retired_at: Option<u64>,
    pub(crate) last_exp: u64,
}

impl Drop for StoredKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private_der);
    }
}

/// The access token a transaction promised to issue, recorded so its signing key stays in
/// the JWKS and its family row stays until the token has expired.
#[derive(Debug, Clone)]
pub(crate) struct AccessGrant {
    pub(crate) kid: String,
    pub(crate) exp: u64,
}

/// What a login or refresh transaction needs to issue an access token. The signing key is
/// chosen *inside* the transaction, as the key the database names current, and its use is
/// recorded there too: a rotation or a purge is another transaction, so it either comes
/// first (and the new key is chosen) or sees the recorded expiry (and keeps the key).
pub(crate) struct GrantRequest<'a> {
    /// `exp` of the access token about to be signed.
    pub(crate) exp: u64,
    /// Called inside the transaction with the chosen `kid` and `exp`: keeps that key
    /// published in memory until `exp`. `false` if the key is not loaded (the transaction
    /// then rolls back).
    pub(crate) pin: &'a dyn Fn(&str, u64) -> bool,
}

impl GrantRequest<'_> {
    /// The grant of key `kid`, which the backend chose and recorded: pins it in memory
    /// until the token's `exp`, or refuses if this instance has not loaded that key.
    pub(crate) fn pinned(&self, kid: String) -> Result<AccessGrant> {
        if !(self.pin)(&kid, self.exp) {
            return Err(StoreError::Inconsistent(
                "the current signing key is not loaded",
            ));
        }
        Ok(AccessGrant { kid, exp: self.exp })
    }
}

/// What one login or refresh step is judged by and what it issues, besides the cookie.
pub(crate) struct Step<'a> {
    pub(crate) now: u64,
    pub(crate) rules: &'a SessionRules,
    pub(crate) grant: GrantRequest<'a>,
    /// A valid DPoP proof came with the request. The same atomic step then binds the
    /// family (monotonic); without one, a refresh of a bound family is refused before any
    /// write ([`Refused::ProofMissing`]).
    pub(crate) dpop: bool,
}

/// A login's answer: the new family's first token, and the ids of the families of the
/// previous cookies it revoked.
pub(crate) type Started = (Issued, Vec<String>);

/// The access token a logout denies: `(jti, exp, sid)`.
pub(crate) type Deny<'a> = (&'a str, u64, &'a str);

/// A logout's answer: the id of the family it revoked, if any.
pub(crate) type Ended = Result<Option<String>>;

/// A refresh's answer: a token to hand out, or why there is none.
pub(crate) type Refreshed = std::result::Result<Issued, Refused>;

/// A refresh token handed out by login or refresh, and who it belongs to.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) token: RefreshToken,
    pub(crate) expires_at: u64,
    pub(crate) family_id: String,
    pub(crate) user: User,
    /// `true` when an old token within the grace window was answered with the existing
    /// current token instead of rotating.
    pub(crate) grace_replay: bool,
    /// The access token to sign with it.
    pub(crate) grant: AccessGrant,
}

impl Issued {
    /// The first token of a family a login just started.
    pub(crate) fn first(
        token: RefreshToken,
        expires_at: u64,
        family_id: String,
        user: User,
        grant: AccessGrant,
    ) -> Self {
        Self {
            token,
            expires_at,
            family_id,
            user,
            grace_replay: false,
            grant,
        }
    }
}

/// Why a refresh token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The family is DPoP-bound and the request carried no proof; nothing changed.
    ProofMissing,
    Unknown,
    Expired,
    Revoked,
    /// The session's absolute lifetime is over.
    SessionEnded,
    /// Replay after the grace window, or beyond the grace replay cap; the family has just
    /// been revoked.
    ReuseDetected {
        family_id: String,
    },
}

/// What `/api/me` must know besides the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessState {
    Allowed,
    Denylisted,
    SessionRevoked,
    SessionUnknown,
}

/// State of one refresh token, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenStatus {
    /// The family's current token.
    Current,
    /// Rotated at this time (Unix seconds).
    Rotated {
        /// When it was rotated.
        at: u64,
    },
    /// Its family is revoked.
    Revoked,
    /// Not in the database (never issued, tampered, or deleted by cleanup).
    Unknown,
}

/// Rows deleted by one cleanup run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Families whose last token expired or that were revoked, once their access tokens expired.
    pub families: usize,
    /// Refresh token rows past their expiry.
    pub refresh_tokens: usize,
    /// Denylist rows past the `exp` of their token.
    pub denied_jtis: usize,
    /// Retired signing keys whose last token expired.
    pub signing_keys: usize,
    /// Login throttle counters past their expiry.
    pub login_throttles: usize,
    /// DPoP replay entries past the `iat` window of their proof.
    pub dpop_proofs: usize,
}

/// Row counts, for tests of data retention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// `users` rows.
    pub users: usize,
    /// `families` rows.
    pub families: usize,
    /// `refresh_tokens` rows.
    pub refresh_tokens: usize,
    /// `denied_jti` rows.
    pub denied_jtis: usize,
    /// `signing_keys` rows.
    pub signing_keys: usize,
    /// `login_throttle` rows.
    pub login_throttles: usize,
}

/// What the server stores. Held as `Arc<dyn Store>` in the app state; every method is
/// atomic on its own (the guarantees are the ones documented on the SQLite backend).
pub(crate) trait Store: Send + Sync {
    /// Creates or updates an account (demo users from the flags, at start).
    fn upsert_user(&self, username: &str, hash: &str, name: &str, roles: &[String]) -> Result<()>;

    fn find_user(&self, username: &str) -> Result<Option<User>>;

    /// Every signing key, oldest first.
    fn load_keys(&self) -> Result<Vec<StoredKey>>;

    /// Stores `key` as the signing key and retires every other current key, atomically.
    fn install_key(&self, key: &StoredKey, now: u64) -> Result<()>;

    /// Starts a new family for `user` and revokes the families of `previous` cookies
    /// (session fixation: a login never continues a session it was handed).
    fn login(&self, user: User, previous: &[TokenHash], step: &Step<'_>) -> Result<Started>;

    /// Presents a refresh token: rotates it, answers a grace-window replay with the
    /// current token, or refuses it (revoking the family on a late replay). The family's
    /// DPoP binding is read and, with a proof, set in the same atomic step.
    fn refresh(&self, presented: &RefreshToken, step: &Step<'_>) -> Result<Refreshed>;

    /// Revokes the family of `cookie` (if known), denies `jti` until `exp` and revokes the
    /// token's session `sid` (`deny`: `(jti, exp, sid)`, from a token that verified).
    /// Returns the revoked family's id (the cookie's, else the token's).
    fn logout(&self, cookie: Option<&TokenHash>, deny: Option<Deny<'_>>, now: u64) -> Ended;

    /// The server-side half of access token validation: denylist and session state.
    fn access_state(&self, jti: &str, sid: &str) -> Result<AccessState>;

    /// Deletes what can no longer matter (data retention); returns the `kid`s of the
    /// signing keys it deleted, so the in-memory ring drops exactly those.
    fn cleanup(&self, now: u64) -> Result<(CleanupReport, Vec<String>)>;

    /// Reads the throttle counters of `keys`, lets `decide` choose the writes, applies
    /// them atomically. `decide` may be called again if the counters changed meanwhile.
    fn throttle_with(
        &self,
        keys: [&str; 4],
        decide: &mut dyn FnMut([Option<Counter>; 4]) -> [Write; 4],
    ) -> Result<()>;

    fn token_status(&self, hash: &TokenHash) -> Result<RefreshTokenStatus>;

    /// Stored entries of each kind, for tests of data retention.
    fn row_counts(&self) -> Result<RowCounts>;

    /// `true` when other instances may write to this store too (their key rotations must
    /// then be picked up: [`crate::keys::KeyRing::sync`]).
    fn shared(&self) -> bool {
        false
    }

    // DPoP (issue 15).

    /// Records a proof's replay key until `expires_at`; `true` when it was not seen before
    /// (or only in an entry that has expired). Atomic, so of two instances receiving the
    /// same proof exactly one gets `true`.
    fn remember_proof(&self, key: &str, expires_at: u64, now: u64) -> Result<bool>;

    /// The secret the nonces of every instance of this store are made with: `fresh` is
    /// stored if there is none yet, and what is stored is returned.
    fn dpop_nonce_secret(&self, fresh: &[u8]) -> Result<Vec<u8>>;

    // The upstream mode (issue 19): the provider's tokens of a family, sealed by the
    // caller, and the lock that lets one request at a time refresh them upstream. A
    // backend without the mode refuses; the server then fails at start, not per request.

    /// The family a known refresh token belongs to.
    fn upstream_family(&self, _hash: &TokenHash) -> Result<Option<String>> {
        Err(upstream_unsupported())
    }

    /// Stores (or replaces) the sealed provider tokens of `family_id`; `access_exp` is the
    /// cached access token's expiry.
    fn upstream_save(&self, _family_id: &str, _sealed: &[u8], _access_exp: u64) -> Result<()> {
        Err(upstream_unsupported())
    }

    /// The sealed provider tokens of `family_id`, if any.
    fn upstream_load(&self, _family_id: &str) -> Result<Option<Vec<u8>>> {
        Err(upstream_unsupported())
    }

    /// Takes the family's upstream-refresh lock for `owner` until `until` (Unix seconds),
    /// unless another owner holds one that has not expired at `now`. `true`: taken.
    fn upstream_lock(
        &self,
        _family_id: &str,
        _owner: &str,
        _now: u64,
        _until: u64,
    ) -> Result<bool> {
        Err(upstream_unsupported())
    }

    /// Releases the lock if `owner` still holds it.
    fn upstream_unlock(&self, _family_id: &str, _owner: &str) -> Result<()> {
        Err(upstream_unsupported())
    }

    /// A key-encryption key kept in the store itself, for a store that has none configured
    /// (SQLite: generated once, in the database file). `None`: configure one.
    fn upstream_local_kek(&self) -> Result<Option<KeyEncryptionKey>> {
        Ok(None)
    }
}

fn upstream_unsupported() -> StoreError {
    StoreError::Backend("this store does not support the upstream mode".into())
}

impl dyn Store {
    /// [`Store::throttle_with`] with an answer: `decide` returns the writes and what the
    /// caller learns; the answer of the decision that was applied is returned.
    pub(crate) fn throttle<T>(
        &self,
        keys: [&str; 4],
        decide: impl Fn([Option<Counter>; 4]) -> ([Write; 4], T),
    ) -> Result<T> {
        let mut answer = None;
        self.throttle_with(keys, &mut |counters| {
            let (writes, a) = decide(counters);
            answer = Some(a);
            writes
        })?;
        answer.ok_or(StoreError::Inconsistent("the throttle decided nothing"))
    }
}
