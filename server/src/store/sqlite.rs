//! SQLite storage: users, signing keys, refresh families and tokens, the `jti` denylist.
//!
//! One connection behind a mutex; callers run on tokio's blocking pool. Every operation
//! that changes more than one row is one `BEGIN IMMEDIATE` transaction, so a crash or an
//! error leaves either the old state or the new one, never a user without a usable cookie.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    AccessGrant, AccessState, CleanupReport, GrantRequest, Issued, KeyEncryptionKey,
    RefreshTokenStatus, Refused, Result, RowCounts, Store, StoreError, StoredKey, User, MAX_CHAIN,
};
use crate::refresh::{
    classify, new_family_key, Presented, RefreshToken, SessionRules, TokenFacts, TokenHash,
};
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

    /// Stores `key` as the signing key and retires every other current key, atomically.
    fn install_key(&self, key: &StoredKey, now: u64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL",
            [to_i64(now)],
        )?;
        tx.execute(
            "INSERT INTO signing_keys (kid, alg, private_der, created_at, retired_at, last_exp)
             VALUES (?1, ?2, ?3, ?4, NULL, 0)",
            params![key.kid, key.alg, key.private_der, to_i64(key.created_at)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Starts a new family for `user_id` and revokes the families of `previous` cookies
    /// (session fixation: a login never continues a session it was handed).
    fn login(
        &self,
        user: User,
        previous: &[TokenHash],
        now: u64,
        rules: &SessionRules,
        grant: &GrantRequest<'_>,
    ) -> Result<(Issued, Vec<String>)> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut revoked = Vec::new();
        for hash in previous {
            let family: Option<String> = tx
                .query_row(
                    "SELECT family_id FROM refresh_tokens WHERE hash = ?1",
                    [&hash[..]],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(family) = family {
                let changed = tx.execute(
                    "UPDATE families SET revoked_at = ?1, revoked_reason = 'login'
                     WHERE id = ?2 AND revoked_at IS NULL",
                    params![to_i64(now), family],
                )?;
                if changed > 0 {
                    revoked.push(family);
                }
            }
        }
        let family_id = crate::refresh::random_id();
        let key = new_family_key();
        let token = RefreshToken::generate();
        let session_ends_at = now.saturating_add(rules.max_age);
        let expires_at = rules.token_expiry(now, session_ends_at);
        tx.execute(
            "INSERT INTO families (id, user_id, successor_key, created_at, expires_at, access_exp_max,
                                   session_expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                family_id,
                user.id,
                &key[..],
                to_i64(now),
                to_i64(expires_at),
                to_i64(grant.exp),
                to_i64(session_ends_at)
            ],
        )?;
        tx.execute(
            "INSERT INTO refresh_tokens (hash, family_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![&token.hash()[..], family_id, to_i64(now), to_i64(expires_at)],
        )?;
        let grant = record_grant(&tx, grant)?;
        tx.commit()?;
        Ok((
            Issued {
                token,
                expires_at,
                family_id,
                user,
                grace_replay: false,
                grant,
            },
            revoked,
        ))
    }

    /// Presents a refresh token: rotates it, answers a grace-window replay with the
    /// current token, or refuses it (revoking the family on a late replay). One transaction.
    fn refresh(
        &self,
        presented: &RefreshToken,
        now: u64,
        rules: &SessionRules,
        grant: &GrantRequest<'_>,
    ) -> Result<std::result::Result<Issued, Refused>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(row) = token_row(&tx, &presented.hash())? else {
            return Ok(Err(Refused::Unknown));
        };
        let family: (i64, Vec<u8>, Option<i64>, i64) = tx.query_row(
            "SELECT user_id, successor_key, revoked_at,
                    COALESCE(session_expires_at, created_at + ?2)
             FROM families WHERE id = ?1",
            params![&row.family_id, to_i64(rules.max_age)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let (user_id, family_key, revoked_at, session_ends_at) = family;
        let session_ends_at = to_u64(session_ends_at);
        let facts = TokenFacts {
            expires_at: row.expires_at,
            rotated_at: row.rotated_at,
            grace_replays: row.grace_replays,
            family_revoked: revoked_at.is_some(),
            session_ends_at,
        };
        let issued = match classify(&facts, now, rules) {
            Presented::FamilyRevoked => return Ok(Err(Refused::Revoked)),
            Presented::Expired => return Ok(Err(Refused::Expired)),
            Presented::SessionEnded => return Ok(Err(Refused::SessionEnded)),
            Presented::Replayed => {
                let reason = if row
                    .rotated_at
                    .is_some_and(|at| now.saturating_sub(at) <= rules.grace)
                {
                    "replay_cap"
                } else {
                    "reuse"
                };
                tx.execute(
                    "UPDATE families SET revoked_at = ?1, revoked_reason = ?3 WHERE id = ?2",
                    params![to_i64(now), row.family_id, reason],
                )?;
                tx.commit()?;
                return Ok(Err(Refused::ReuseDetected {
                    family_id: row.family_id,
                }));
            }
            Presented::Current => {
                let next = presented.successor(&family_key);
                let expires_at = rules.token_expiry(now, session_ends_at);
                tx.execute(
                    "UPDATE refresh_tokens SET rotated_at = ?1 WHERE hash = ?2",
                    params![to_i64(now), &presented.hash()[..]],
                )?;
                tx.execute(
                    "INSERT INTO refresh_tokens (hash, family_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![&next.hash()[..], row.family_id, to_i64(now), to_i64(expires_at)],
                )?;
                tx.execute(
                    "UPDATE families SET expires_at = MAX(expires_at, ?1) WHERE id = ?2",
                    params![to_i64(expires_at), row.family_id],
                )?;
                (next, expires_at, false)
            }
            Presented::RotatedWithinGrace => {
                // Walk the chain to the current token. It is the one the winner of the race
                // (or the lost response) already received, so every racer ends up with it.
                let mut candidate = presented.successor(&family_key);
                let mut found = None;
                for _ in 0..MAX_CHAIN {
                    match token_row(&tx, &candidate.hash())? {
                        Some(r) if r.family_id == row.family_id && r.rotated_at.is_none() => {
                            found = Some(r.expires_at);
                            break;
                        }
                        Some(r) if r.family_id == row.family_id => {
                            candidate = candidate.successor(&family_key);
                        }
                        _ => break,
                    }
                }
                match found {
                    Some(expires_at) if expires_at > now => {
                        // Counted only when it hands something out.
                        tx.execute(
                            "UPDATE refresh_tokens SET grace_replays = grace_replays + 1
                             WHERE hash = ?1",
                            [&presented.hash()[..]],
                        )?;
                        (candidate, expires_at, true)
                    }
                    // No current token reachable (deleted or expired): refuse, but a failed
                    // lookup is not evidence of theft, so nothing is revoked.
                    _ => return Ok(Err(Refused::Unknown)),
                }
            }
        };
        let user = tx.query_row(
            "SELECT id, username, password_hash, name, roles FROM users WHERE id = ?1",
            [user_id],
            user_from_row,
        )?;
        tx.execute(
            "UPDATE families SET access_exp_max = MAX(access_exp_max, ?1) WHERE id = ?2",
            params![to_i64(grant.exp), row.family_id],
        )?;
        let grant = record_grant(&tx, grant)?;
        tx.commit()?;
        let (token, expires_at, grace_replay) = issued;
        Ok(Ok(Issued {
            token,
            expires_at,
            family_id: row.family_id,
            user,
            grace_replay,
            grant,
        }))
    }

    /// Revokes the family of `cookie` (if known), denies `jti` until `exp` and revokes the
    /// token's session `sid`, atomically. `deny` must come from a token that verified.
    /// Returns the revoked family's id (the cookie's, else the token's).
    fn logout(
        &self,
        cookie: Option<&TokenHash>,
        deny: Option<(&str, u64, &str)>,
        now: u64,
    ) -> Result<Option<String>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut family = None;
        if let Some(hash) = cookie {
            if let Some(row) = token_row(&tx, hash)? {
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
        tx.commit()?;
        Ok(family)
    }

    /// The server-side half of access token validation: denylist and session state.
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
        let now = to_i64(now);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let refresh_tokens =
            tx.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?1", [now])?;
        // A family must outlive its access tokens: /api/me refuses a token whose sid is
        // unknown, and a revoked family must keep refusing until they have expired.
        let families = tx.execute(
            "DELETE FROM families WHERE access_exp_max <= ?1
             AND (revoked_at IS NOT NULL OR expires_at <= ?1)",
            [now],
        )?;
        let denied_jtis = tx.execute("DELETE FROM denied_jti WHERE expires_at <= ?1", [now])?;
        let purged: Vec<String> = {
            let mut stmt = tx.prepare(
                "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND last_exp <= ?1
                 RETURNING kid",
            )?;
            let rows = stmt.query_map([now], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let login_throttles =
            tx.execute("DELETE FROM login_throttle WHERE expires_at <= ?1", [now])?;
        tx.commit()?;
        let report = CleanupReport {
            families,
            refresh_tokens,
            denied_jtis,
            signing_keys: purged.len(),
            login_throttles,
        };
        Ok((report, purged))
    }

    /// Reads the throttle counters of `keys`, lets `decide` (the pure policy) choose the
    /// writes, and applies them, in one transaction: concurrent logins see each other's
    /// charges, never a stale count.
    fn throttle_with(
        &self,
        keys: [&str; 4],
        decide: &mut dyn FnMut([Option<Counter>; 4]) -> [Write; 4],
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut counters = [None; 4];
        for (counter, key) in counters.iter_mut().zip(keys) {
            *counter = tx
                .query_row(
                    "SELECT failures, last_failure, expires_at FROM login_throttle WHERE key = ?1",
                    [key],
                    |r| {
                        Ok(Counter {
                            failures: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                            last_failure: to_u64(r.get(1)?),
                            expires_at: to_u64(r.get(2)?),
                        })
                    },
                )
                .optional()?;
        }
        let writes = decide(counters);
        for (write, key) in writes.into_iter().zip(keys) {
            match write {
                Write::Keep => {}
                Write::Set(c) => {
                    tx.execute(
                        "INSERT INTO login_throttle (key, failures, last_failure, expires_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(key) DO UPDATE SET failures = ?2, last_failure = ?3,
                                                        expires_at = ?4",
                        params![
                            key,
                            i64::from(c.failures),
                            to_i64(c.last_failure),
                            to_i64(c.expires_at)
                        ],
                    )?;
                }
                Write::Delete => {
                    tx.execute("DELETE FROM login_throttle WHERE key = ?1", [key])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
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
}

struct TokenRow {
    family_id: String,
    expires_at: u64,
    rotated_at: Option<u64>,
    grace_replays: u32,
}

fn token_row(conn: &Connection, hash: &TokenHash) -> Result<Option<TokenRow>> {
    Ok(conn
        .query_row(
            "SELECT family_id, expires_at, rotated_at, grace_replays
             FROM refresh_tokens WHERE hash = ?1",
            [&hash[..]],
            |r| {
                Ok(TokenRow {
                    family_id: r.get(0)?,
                    expires_at: to_u64(r.get(1)?),
                    rotated_at: r.get::<_, Option<i64>>(2)?.map(to_u64),
                    grace_replays: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                })
            },
        )
        .optional()?)
}

/// Chooses the signing key and records its use, inside the caller's transaction.
fn record_grant(conn: &Connection, request: &GrantRequest<'_>) -> Result<AccessGrant> {
    let kid: String = conn
        .query_row(
            "SELECT kid FROM signing_keys WHERE retired_at IS NULL
             ORDER BY created_at DESC, kid LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(StoreError::Inconsistent("no current signing key"))?;
    conn.execute(
        "UPDATE signing_keys SET last_exp = MAX(last_exp, ?1) WHERE kid = ?2",
        params![to_i64(request.exp), kid],
    )?;
    if !(request.pin)(&kid, request.exp) {
        return Err(StoreError::Inconsistent(
            "the current signing key is not loaded",
        ));
    }
    Ok(AccessGrant {
        kid,
        exp: request.exp,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningAlgorithm;
    use crate::keys::SigningKey;

    const RULES: SessionRules = SessionRules {
        refresh_ttl: 600,
        grace: 10,
        grace_replays: 10,
        max_age: 3600,
    };

    fn store_with_session(now: u64) -> (SqliteStore, String) {
        let store = SqliteStore::open(":memory:").unwrap();
        store.upsert_user("u", "$argon2id$x", "U", &[]).unwrap();
        let key = SigningKey::generate(SigningAlgorithm::Es256, now).unwrap();
        store.install_key(&key, now).unwrap();
        let user = store.find_user("u").unwrap().unwrap();
        let pin = |_: &str, _: u64| true;
        let grant = GrantRequest {
            exp: now + 900,
            pin: &pin,
        };
        let (issued, _) = store.login(user, &[], now, &RULES, &grant).unwrap();
        (store, issued.family_id)
    }

    #[test]
    fn the_denylist_alone_refuses_a_jti_of_a_live_session() {
        let (store, sid) = store_with_session(1000);
        // A verified token whose session is already gone: only its jti can be denied.
        let family = store
            .logout(None, Some(("jti-1", 1900, "no-such-session")), 1000)
            .unwrap();
        assert_eq!(family, None);
        assert_eq!(
            store.access_state("jti-1", &sid).unwrap(),
            AccessState::Denylisted
        );
        assert_eq!(
            store.access_state("jti-2", &sid).unwrap(),
            AccessState::Allowed
        );
    }

    #[test]
    fn a_grant_is_refused_when_the_chosen_key_is_not_loaded() {
        let (store, _) = store_with_session(1000);
        let user = store.find_user("u").unwrap().unwrap();
        let pin = |_: &str, _: u64| false;
        let grant = GrantRequest {
            exp: 1900,
            pin: &pin,
        };
        let before = store.row_counts().unwrap();
        assert!(matches!(
            store.login(user, &[], 1000, &RULES, &grant),
            Err(StoreError::Inconsistent(_))
        ));
        assert_eq!(store.row_counts().unwrap(), before, "rolled back");
    }
}
