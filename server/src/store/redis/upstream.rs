//! The upstream mode on Redis (issue 19): the provider's tokens of a family, sealed by the
//! caller, and the lock that lets one request at a time, on any instance, refresh them
//! at the provider.
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `tm:{<fid>}:f`, field `up` | hash field | the sealed provider tokens (upstream/tokens.rs) |
//! | `tm:{<fid>}:ul` | string | the upstream-refresh lock: its owner, `PX` its lifetime |
//!
//! The sealed tokens are a field of the family's own hash, so they live exactly as long
//! as the family (its TTL, which every rotation extends) and go with it, and every script
//! that touches them runs on the family's slot of a cluster. The lock is a key of its own
//! beside it (same hash tag): `SET NX PX` takes it, a compare-and-delete script releases it
//! only for its owner, and a holder that crashed loses it when it lapses.

use super::*;

/// The field of the family hash holding the sealed provider tokens.
const TOKENS_FIELD: &str = "up";

/// KEYS: family. ARGV: the sealed tokens. Never creates a family hash that expired (or was
/// never created): 0 then.
const SAVE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'up', ARGV[1])
return 1
";

/// KEYS: lock. ARGV: owner. Deletes the lock only if `owner` still holds it.
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

fn lock_key(fid: &str) -> String {
    format!("tm:{{{fid}}}:ul")
}

impl RedisStore {
    pub(super) fn upstream_save_sealed(&self, fid: &str, sealed: &[u8]) -> Result<()> {
        let saved: i64 = self.script(
            &redis::Script::new(SAVE),
            vec![family_key(fid).into_bytes()],
            vec![sealed.to_vec()],
        )?;
        if saved != 1 {
            // As SQLite's foreign key refuses a row of a family that is not there.
            return Err(StoreError::Inconsistent(
                "the family of these provider tokens is gone",
            ));
        }
        Ok(())
    }

    pub(super) fn upstream_load_sealed(&self, fid: &str) -> Result<Option<Vec<u8>>> {
        let key = family_key(fid);
        self.run(move |mut c| async move {
            redis::cmd("HGET")
                .arg(key)
                .arg(TOKENS_FIELD)
                .query_async(&mut c)
                .await
        })
    }

    pub(super) fn upstream_try_lock(
        &self,
        fid: &str,
        owner: &str,
        now: u64,
        until: u64,
    ) -> Result<bool> {
        let (key, owner) = (lock_key(fid), owner.to_owned());
        let millis = until.saturating_sub(now).max(1).saturating_mul(1000);
        let set: Option<String> = self.run(move |mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(owner)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query_async(&mut c)
                .await
        })?;
        Ok(set.is_some())
    }

    pub(super) fn upstream_release(&self, fid: &str, owner: &str) -> Result<()> {
        let _: i64 = self.script(
            &redis::Script::new(UNLOCK),
            vec![lock_key(fid).into_bytes()],
            vec![owner.as_bytes().to_vec()],
        )?;
        Ok(())
    }
}
