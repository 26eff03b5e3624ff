//! SQLite storage: users, signing keys, refresh families and tokens, the `jti` denylist.
//!
//! One connection behind a mutex; callers run on tokio's blocking pool. Every operation
//! that changes more than one row is one `BEGIN IMMEDIATE` transaction, so a crash or an
//! error leaves either the old state or the new one, never a user without a usable cookie.
//!
//! Login and refresh (the transactions that start and rotate a family) live in
//! [`rotate`]; the unit tests in `tests.rs`.

mod retention;
mod rotate;
mod throttle;

use rotate::token_row;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{
    AccessState, CleanupReport, Deny, Ended, KeyEncryptionKey, RefreshTokenStatus, Refreshed,
    Result, RowCounts, Started, Step, Store, StoreError, StoredKey, User,
};
use crate::refresh::{RefreshToken, TokenHash};
use crate::schema;
use crate::throttle::{Counter, Write};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            // Another process holds the file past busy_timeout: try again later.
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Self::Unavailable(format!("sqlite: {e}"))
            }
            _ => Self::Backend(format!("sqlite: {e}")),
        }
    }
}

pub(crate) struct SqliteStore {
    conn: Mutex<Connection>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStore {
    pub(crate) fn open(path: &str) -> Result<Self> {
        let mut conn = if path == ":memory:" {
            Connection::open_in_memory()?
        } else {
            let conn = Connection::open(Path::new(path))?;
            restrict_permissions(path);
            conn
        };
        // WAL lets readers proceed during a write; FULL makes a committed rotation
        // survive power loss, so the browser's new cookie is never unknown after a crash.
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )?;
        schema::upgrade(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed if `f` succeeds.
    fn immediate<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held unwound through rusqlite's Transaction, whose
        // Drop rolled back, so the connection is consistent and can be used again.
        self.conn.lock().unwrap_or_else(|poisoned| {
            self.conn.clear_poison();
            poisoned.into_inner()
        })
    }
}

impl Store for SqliteStore {
    fn upsert_user(&self, username: &str, hash: &str, name: &str, roles: &[String]) -> Result<()> {
        let roles = serde_json::to_string(roles).unwrap_or_else(|_| "[]".into());
        self.conn().execute(
            "INSERT INTO users (username, password_hash, name, roles) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(username) DO UPDATE SET password_hash = ?2, name = ?3, roles = ?4",
            params![username, hash, name, roles],
        )?;
        Ok(())
    }

    fn find_user(&self, username: &str) -> Result<Option<User>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, username, password_hash, name, roles FROM users WHERE username = ?1",
                [username],
                user_from_row,
            )
            .optional()?)
    }

    fn load_keys(&self) -> Result<Vec<StoredKey>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT kid, alg, private_der, created_at, retired_at, last_exp
             FROM signing_keys ORDER BY created_at, kid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredKey {
                kid: r.get(0)?,
                alg: r.get(1)?,
                private_der: r.get(2)?,
                created_at: to_u64(r.get(3)?),
                retired_at: r.get::<_, Option<i64>>(4)?.map(to_u64),
                last_exp: to_u64(r.get(5)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn install_key(&self, key: &StoredKey, now: u64) -> Result<()> {
        self.immediate(|tx| {
            tx.execute(
                "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL",
                [to_i64(now)],
            )?;
            tx.execute(
                "INSERT INTO signing_keys (kid, alg, private_der, created_at, retired_at, last_exp)
                 VALUES (?1, ?2, ?3, ?4, NULL, 0)",
                params![key.kid, key.alg, key.private_der, to_i64(key.created_at)],
            )?;
            Ok(())
        })
    }

    fn login(&self, user: User, previous: &[TokenHash], step: &Step<'_>) -> Result<Started> {
        self.immediate(|tx| rotate::start_family(tx, user, previous, step))
    }

    fn refresh(&self, presented: &RefreshToken, step: &Step<'_>) -> Result<Refreshed> {
        self.immediate(|tx| rotate::rotate(tx, presented, step))
    }

    /// Revokes the family of `cookie` (if known), denies `jti` until `exp` and revokes the
    /// token's session `sid`, atomically. `deny` must come from a token that verified.
    /// Returns the revoked family's id (the cookie's, else the token's).
    fn logout(&self, cookie: Option<&TokenHash>, deny: Option<Deny<'_>>, now: u64) -> Ended {
        self.immediate(|tx| {
            let mut family = None;
            if let Some(hash) = cookie {
                if let Some(row) = token_row(tx, hash)? {
                    tx.execute(
                        "UPDATE families SET revoked_at = ?1, revoked_reason = 'logout'
                     WHERE id = ?2 AND revoked_at IS NULL",
                        params![to_i64(now), row.family_id],
                    )?;
                    family = Some(row.family_id);
                }
            }
            if let Some((jti, exp, sid)) = deny {
                tx.execute(
                    "INSERT INTO denied_jti (jti, expires_at) VALUES (?1, ?2)
                 ON CONFLICT(jti) DO UPDATE SET expires_at = MAX(expires_at, ?2)",
                    params![jti, to_i64(exp)],
                )?;
                // Without a cookie the bearer is the only handle on the session: end it too,
                // or a "logged out" client would keep a live refresh family.
                let changed = tx.execute(
                    "UPDATE families SET revoked_at = ?1, revoked_reason = 'logout'
                 WHERE id = ?2 AND revoked_at IS NULL",
                    params![to_i64(now), sid],
                )?;
                if family.is_none() && changed > 0 {
                    family = Some(sid.to_owned());
                }
            }
            Ok(family)
        })
    }

    fn access_state(&self, jti: &str, sid: &str) -> Result<AccessState> {
        let conn = self.conn();
        let denied: bool = conn
            .query_row("SELECT 1 FROM denied_jti WHERE jti = ?1", [jti], |_| {
                Ok(true)
            })
            .optional()?
            .unwrap_or(false);
        if denied {
            return Ok(AccessState::Denylisted);
        }
        let revoked: Option<Option<i64>> = conn
            .query_row(
                "SELECT revoked_at FROM families WHERE id = ?1",
                [sid],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match revoked {
            None => AccessState::SessionUnknown,
            Some(Some(_)) => AccessState::SessionRevoked,
            Some(None) => AccessState::Allowed,
        })
    }

    /// Deletes rows that can no longer matter (data retention). Each kind is deleted only
    /// once nothing that refers to it can still be valid.
    /// Also returns the `kid`s of the signing keys it deleted: the in-memory ring drops
    /// exactly those, so a key leaves memory only once the database agrees it is unused.
    fn cleanup(&self, now: u64) -> Result<(CleanupReport, Vec<String>)> {
        self.immediate(|tx| retention::cleanup(tx, now))
    }

    /// Reads the throttle counters of `keys`, lets `decide` (the pure policy) choose the
    /// writes, and applies them, in one transaction: concurrent logins see each other's
    /// charges, never a stale count.
    fn throttle_with(
        &self,
        keys: [&str; 4],
        decide: &mut dyn FnMut([Option<Counter>; 4]) -> [Write; 4],
    ) -> Result<()> {
        self.immediate(|tx| throttle::apply(tx, keys, decide))
    }

    fn token_status(&self, hash: &TokenHash) -> Result<RefreshTokenStatus> {
        let conn = self.conn();
        let row: Option<(Option<i64>, Option<i64>)> = conn
            .query_row(
                "SELECT t.rotated_at, f.revoked_at FROM refresh_tokens t
                 JOIN families f ON f.id = t.family_id WHERE t.hash = ?1",
                [&hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => RefreshTokenStatus::Unknown,
            Some((_, Some(_))) => RefreshTokenStatus::Revoked,
            Some((None, None)) => RefreshTokenStatus::Current,
            Some((Some(at), None)) => RefreshTokenStatus::Rotated { at: to_u64(at) },
        })
    }

    fn row_counts(&self) -> Result<RowCounts> {
        let conn = self.conn();
        let count = |table: &str| -> Result<usize> {
            let n: i64 =
                conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        };
        Ok(RowCounts {
            users: count("users")?,
            families: count("families")?,
            refresh_tokens: count("refresh_tokens")?,
            denied_jtis: count("denied_jti")?,
            signing_keys: count("signing_keys")?,
            login_throttles: count("login_throttle")?,
        })
    }

    fn upstream_family(&self, hash: &TokenHash) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT family_id FROM refresh_tokens WHERE hash = ?1",
                [&hash[..]],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn upstream_save(&self, family_id: &str, sealed: &[u8], access_exp: u64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO upstream_tokens (family_id, sealed, access_exp) VALUES (?1, ?2, ?3)
             ON CONFLICT (family_id) DO UPDATE SET sealed = ?2, access_exp = ?3",
            params![family_id, sealed, to_i64(access_exp)],
        )?;
        Ok(())
    }

    fn upstream_load(&self, family_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT sealed FROM upstream_tokens WHERE family_id = ?1",
                [family_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn upstream_lock(&self, family_id: &str, owner: &str, now: u64, until: u64) -> Result<bool> {
        // One statement: SQLite applies it atomically, whichever instance or thread asks.
        let changed = self.conn().execute(
            "UPDATE upstream_tokens SET lock_owner = ?2, lock_until = ?4
             WHERE family_id = ?1 AND (lock_owner IS NULL OR lock_until <= ?3)",
            params![family_id, owner, to_i64(now), to_i64(until)],
        )?;
        Ok(changed == 1)
    }

    fn upstream_unlock(&self, family_id: &str, owner: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE upstream_tokens SET lock_owner = NULL, lock_until = NULL
             WHERE family_id = ?1 AND lock_owner = ?2",
            params![family_id, owner],
        )?;
        Ok(())
    }

    /// Generated at the first start in the upstream mode and kept in the database: it
    /// protects the provider's tokens against a leaked backup that lacks it only if the
    /// operator configures a KEK instead (server/README.md says so).
    fn upstream_local_kek(&self) -> Result<Option<KeyEncryptionKey>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: Option<String> = tx
            .query_row("SELECT kek FROM upstream_secret WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        let text = match stored {
            Some(text) => text,
            None => {
                let text = KeyEncryptionKey::generate().to_base64();
                tx.execute(
                    "INSERT INTO upstream_secret (id, kek) VALUES (1, ?1)",
                    [&text],
                )?;
                text
            }
        };
        tx.commit()?;
        let kek = KeyEncryptionKey::from_base64(&text).map_err(StoreError::Backend)?;
        Ok(Some(kek))
    }

    fn remember_proof(&self, key: &str, expires_at: u64, now: u64) -> Result<bool> {
        // An expired entry the cleanup has not deleted yet is taken over, not a replay.
        let changed = self.conn().execute(
            "INSERT INTO dpop_proofs (key, expires_at) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at
             WHERE dpop_proofs.expires_at <= ?3",
            params![key, to_i64(expires_at), to_i64(now)],
        )?;
        Ok(changed == 1)
    }

    fn dpop_nonce_secret(&self, fresh: &[u8]) -> Result<Vec<u8>> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO dpop_secret (id, secret) VALUES (1, ?1)",
            [fresh],
        )?;
        Ok(
            conn.query_row("SELECT secret FROM dpop_secret WHERE id = 1", [], |r| {
                r.get(0)
            })?,
        )
    }
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let roles: String = r.get(4)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        name: r.get(3)?,
        roles: serde_json::from_str(&roles).unwrap_or_default(),
    })
}

/// The database holds private signing keys: readable by its owner only.
fn restrict_permissions(path: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = path;
}
