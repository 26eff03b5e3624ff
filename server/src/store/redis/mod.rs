//! Redis backend (one server, or a Redis Cluster with the same code; Valkey-compatible).
//!
//! # Keys
//! Every key starts with `tm:`. Keys that one atomic step touches together share a hash
//! tag, so on a cluster each script runs on one slot:
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `tm:u:<username>` | hash | account: `hash`, `name`, `roles` (JSON) |
//! | `tm:t:<sha256 hex>` | string | family id of a refresh token (immutable index) |
//! | `tm:{<fid>}:f` | hash | family: `user`, `key`, `created`, `exp`, `amax`, `end`, `rev`, `why`, `dpop` |
//! | `tm:{<fid>}:t:<sha256 hex>` | string | one of its tokens: `exp|rotated|grace_replays` |
//! | `tm:d:<jti>` | string | denylisted access token |
//! | `tm:{thr}:<key>` | string | login throttle counter `failures|last|expires` |
//! | `tm:{keys}:…` | | signing keys: `all` (set), `current`, `k:<kid>` (hash, DER sealed) |
//!
//! Expiry is by Redis TTL, computed from the server's clock as "seconds from now", so
//! nothing needs a sweep: a token entry lives until the token's own expiry (as SQLite's
//! row does), a family until its newest token and its access tokens have expired, a
//! denylist entry until its token's `exp`, a throttle counter until it is forgotten. Only retired signing keys are purged by the maintenance run (it must tell
//! the in-memory ring which keys went).
//!
//! # Atomicity
//! The policy is Rust ([`classify`], the throttle policy); scripts only read and apply.
//! A refresh reads the facts, classifies them, and applies the decision with a script
//! that first checks the facts are still the ones classified (compare-and-set); if
//! another instance changed them meanwhile the script applies nothing and the refresh
//! starts over on the new facts. So of 50 racing refreshes of one cookie exactly one
//! rotates and the others are grace replays that receive the same successor.
//!
//! A rotating refresh costs 3 round trips in 2 handoffs to the store's runtime, `/api/me`
//! 1: the independent commands of one step are sent at once ([`calls`]; a cluster refuses
//! pipelines across slots), and the steps that need no decision in between run as one
//! future. The token
//! index `tm:t:` stays in a slot of its own: the cookie carries only the token, and the
//! family id, hence its hash tag, is what the index tells.
//!
//! The connection lives in [`conn`], commands as futures in [`calls`], key names and value
//! encodings in [`keys`], the Lua scripts in [`scripts`], and the refresh rotation in
//! [`rotate`].

mod calls;
mod conn;
mod keys;
mod rotate;
mod scripts;
mod throttle;
mod upstream;

use calls::*;
use conn::*;
use keys::*;
use scripts::*;

use super::kek::KeyEncryptionKey;
use super::{
    AccessState, CleanupReport, Deny, Ended, Issued, RefreshTokenStatus, Refreshed, Result,
    RowCounts, Started, Step, Store, StoreError, StoredKey, User,
};
use crate::refresh::{new_family_key, RefreshToken, TokenHash};
use crate::throttle::{Counter, Write};

/// How often one operation starts over after losing a compare-and-set to a concurrent
/// one. Every lost round means another request made progress, so this bounds the number
/// of requests racing on one family (or one throttle counter) at the same moment.
const MAX_ATTEMPTS: usize = 200;

pub(crate) struct RedisStore {
    /// The connection's own runtime: the store's methods block (they run on tokio's
    /// blocking pool, or in a test's thread), so they hand their futures to it and wait.
    runtime: Option<tokio::runtime::Runtime>,
    conn: Conn,
    cluster: bool,
    kek: KeyEncryptionKey,
    scripts: Scripts,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Store for RedisStore {
    fn shared(&self) -> bool {
        true
    }

    fn upsert_user(&self, username: &str, hash: &str, name: &str, roles: &[String]) -> Result<()> {
        let key = user_key(username);
        let roles = serde_json::to_string(roles).unwrap_or_else(|_| "[]".into());
        let (hash, name) = (hash.to_owned(), name.to_owned());
        self.run(move |mut c| async move {
            redis::cmd("HSET")
                .arg(key)
                .arg("hash")
                .arg(hash)
                .arg("name")
                .arg(name)
                .arg("roles")
                .arg(roles)
                .query_async::<()>(&mut c)
                .await
        })
    }

    fn find_user(&self, username: &str) -> Result<Option<User>> {
        let name = username.to_owned();
        let map = self.run(move |c| user_call(c, &name))?;
        Ok(parse_user(username, &map))
    }

    fn load_keys(&self) -> Result<Vec<StoredKey>> {
        let flat: Vec<Vec<u8>> = self.script(
            &self.scripts.load_keys,
            vec![KEYS_ALL.as_bytes().to_vec()],
            vec![KEY_PREFIX.as_bytes().to_vec()],
        )?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let num = |b: &[u8]| {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
        };
        let mut keys = Vec::new();
        for row in flat.chunks(6) {
            let [kid, alg, der, created, retired, last] = row else {
                return Err(StoreError::Inconsistent(
                    "a signing key entry is incomplete",
                ));
            };
            let kid = text(kid);
            let private_der = self.kek.open(&kid, der)?;
            keys.push(StoredKey {
                alg: text(alg),
                private_der,
                created_at: num(created).unwrap_or(0),
                retired_at: num(retired),
                last_exp: num(last).unwrap_or(0),
                kid,
            });
        }
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        Ok(keys)
    }

    fn install_key(&self, key: &StoredKey, now: u64) -> Result<()> {
        let sealed = self.kek.seal(&key.kid, &key.private_der)?;
        let _: i64 = self.script(
            &self.scripts.install_key,
            vec![
                KEYS_ALL.as_bytes().to_vec(),
                KEYS_CURRENT.as_bytes().to_vec(),
                format!("{KEY_PREFIX}{}", key.kid).into_bytes(),
            ],
            vec![
                key.kid.as_bytes().to_vec(),
                key.alg.as_bytes().to_vec(),
                sealed,
                key.created_at.to_string().into_bytes(),
                now.to_string().into_bytes(),
                KEY_PREFIX.as_bytes().to_vec(),
            ],
        )?;
        Ok(())
    }

    fn login(&self, user: User, previous: &[TokenHash], step: &Step<'_>) -> Result<Started> {
        let now = step.now;
        let mut revoked = Vec::new();
        for hash in previous {
            if let Some(fid) = self.family_of(hash)? {
                if self.revoke(&fid, now, "login", false)? {
                    revoked.push(fid);
                }
            }
        }
        let grant = self.grant(&step.grant)?;
        let family_id = crate::refresh::random_id();
        let key = zeroize::Zeroizing::new(new_family_key());
        let token = RefreshToken::generate();
        let session_ends_at = now.saturating_add(step.rules.max_age);
        let expires_at = step.rules.token_expiry(now, session_ends_at);
        // The index first: a family is never reachable by a cookie whose index is missing.
        self.set_index(&token.hash(), &family_id, expires_at, now)?;
        let entry = TokenEntry {
            expires_at,
            rotated_at: None,
            grace_replays: 0,
        };
        let _: i64 = self.script(
            &self.scripts.create,
            vec![
                family_key(&family_id).into_bytes(),
                token_key(&family_id, &token.hash()),
            ],
            vec![
                user.username.as_bytes().to_vec(),
                key.to_vec(),
                now.to_string().into_bytes(),
                expires_at.to_string().into_bytes(),
                grant.exp.to_string().into_bytes(),
                session_ends_at.to_string().into_bytes(),
                entry.encode().into_bytes(),
                ttl(expires_at.max(grant.exp), now).to_string().into_bytes(),
                ttl(expires_at, now).to_string().into_bytes(),
                proof_arg(step.dpop),
            ],
        )?;
        let issued = Issued::first(token, expires_at, family_id, user, grant);
        Ok((issued, revoked))
    }

    fn refresh(&self, presented: &RefreshToken, step: &Step<'_>) -> Result<Refreshed> {
        self.rotate(presented, step)
    }
    fn logout(&self, cookie: Option<&TokenHash>, deny: Option<Deny<'_>>, now: u64) -> Ended {
        let mut family = None;
        if let Some(hash) = cookie {
            if let Some(fid) = self.family_of(hash)? {
                let exists = self.read_family(&fid)?.is_some();
                self.revoke(&fid, now, "logout", false)?;
                if exists {
                    family = Some(fid);
                }
            }
        }
        if let Some((jti, exp, sid)) = deny {
            let key = deny_key(jti);
            let secs = ttl(exp, now);
            self.run(move |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("EX")
                    .arg(secs)
                    .query_async::<()>(&mut c)
                    .await
            })?;
            let changed = self.revoke(sid, now, "logout", false)?;
            if family.is_none() && changed {
                family = Some(sid.to_owned());
            }
        }
        Ok(family)
    }

    fn access_state(&self, jti: &str, sid: &str) -> Result<AccessState> {
        // One round trip: the denylist entry and the family are read at the same time
        // (different slots).
        let (deny, fam) = (deny_key(jti), family_key(sid));
        let (denied, (exists, revoked)): (bool, (bool, bool)) = self.run(move |c| async move {
            let (mut a, mut b) = (c.clone(), c);
            let mut denied = redis::cmd("EXISTS");
            denied.arg(&deny);
            let mut family = redis::pipe();
            family
                .cmd("EXISTS")
                .arg(&fam)
                .cmd("HEXISTS")
                .arg(&fam)
                .arg("rev");
            tokio::try_join!(denied.query_async(&mut a), family.query_async(&mut b))
        })?;
        Ok(match (denied, exists, revoked) {
            (true, _, _) => AccessState::Denylisted,
            (false, false, _) => AccessState::SessionUnknown,
            (false, true, true) => AccessState::SessionRevoked,
            (false, true, false) => AccessState::Allowed,
        })
    }

    fn cleanup(&self, now: u64) -> Result<(CleanupReport, Vec<String>)> {
        // Everything else expires by its TTL.
        let purged: Vec<String> = self.script(
            &self.scripts.purge_keys,
            vec![KEYS_ALL.as_bytes().to_vec()],
            vec![KEY_PREFIX.as_bytes().to_vec(), now.to_string().into_bytes()],
        )?;
        Ok((
            CleanupReport {
                signing_keys: purged.len(),
                ..CleanupReport::default()
            },
            purged,
        ))
    }

    fn throttle_with(
        &self,
        keys: [&str; 4],
        decide: &mut dyn FnMut([Option<Counter>; 4]) -> [Write; 4],
    ) -> Result<()> {
        self.throttle_cas(keys, decide)
    }

    fn token_status(&self, hash: &TokenHash) -> Result<RefreshTokenStatus> {
        let Some(fid) = self.family_of(hash)? else {
            return Ok(RefreshTokenStatus::Unknown);
        };
        let Some(family) = self.read_family(&fid)? else {
            return Ok(RefreshTokenStatus::Unknown);
        };
        let Some(raw) = self
            .token_entries(&fid, vec![hash.to_vec()])?
            .pop()
            .flatten()
        else {
            return Ok(RefreshTokenStatus::Unknown);
        };
        let entry = TokenEntry::decode(&raw)
            .ok_or(StoreError::Inconsistent("a token entry is malformed"))?;
        Ok(match (family.revoked, entry.rotated_at) {
            (true, _) => RefreshTokenStatus::Revoked,
            (false, None) => RefreshTokenStatus::Current,
            (false, Some(at)) => RefreshTokenStatus::Rotated { at },
        })
    }

    fn row_counts(&self) -> Result<RowCounts> {
        Ok(RowCounts {
            users: self.count("tm:u:*")?,
            families: self.count("tm:{*}:f")?,
            refresh_tokens: self.count("tm:t:*")?,
            denied_jtis: self.count("tm:d:*")?,
            signing_keys: self.count("tm:{keys}:k:*")?,
            login_throttles: self.count("tm:{thr}:*")?,
        })
    }

    fn remember_proof(&self, key: &str, expires_at: u64, now: u64) -> Result<bool> {
        // One key, so one slot of a cluster: SET NX is the whole decision.
        let key = format!("tm:p:{key}");
        let secs = ttl(expires_at, now);
        let set: Option<String> = self.run(move |mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(secs)
                .query_async(&mut c)
                .await
        })?;
        Ok(set.is_some())
    }

    fn dpop_nonce_secret(&self, _fresh: &[u8]) -> Result<Vec<u8>> {
        // Every instance holds the same key-encryption key: nothing to store.
        Ok(self.kek.derive(b"token-manager dpop nonce secret"))
    }

    // The upstream mode: upstream.rs.

    fn upstream_family(&self, hash: &TokenHash) -> Result<Option<String>> {
        self.family_of(hash)
    }

    fn upstream_save(&self, family_id: &str, sealed: &[u8], _access_exp: u64) -> Result<()> {
        self.upstream_save_sealed(family_id, sealed)
    }

    fn upstream_load(&self, family_id: &str) -> Result<Option<Vec<u8>>> {
        self.upstream_load_sealed(family_id)
    }

    fn upstream_lock(&self, family_id: &str, owner: &str, now: u64, until: u64) -> Result<bool> {
        self.upstream_try_lock(family_id, owner, now, until)
    }

    fn upstream_unlock(&self, family_id: &str, owner: &str) -> Result<()> {
        self.upstream_release(family_id, owner)
    }
}
