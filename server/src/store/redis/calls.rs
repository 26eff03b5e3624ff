//! Commands as futures on a clone of the connection, so the independent commands of one
//! step go out together and cost one round trip (`tokio::join!` on a multiplexed
//! connection; on a cluster, each to its slot's node at the same time).
//!
//! A pipeline would not do across slots: a cluster refuses a pipeline whose keys are in
//! different slots, and the family, the token index, the signing keys and the account
//! are four different slots.

use std::collections::HashMap;
use std::future::Future;

use redis::{FromRedisValue, RedisResult, Script};

use super::*;
use crate::refresh::TokenHash;
use crate::store::{AccessGrant, GrantRequest, Result, StoreError, User};

/// The family's fields (`user`, `key`, `rev`, `end`, `dpop`) and a token's entry, as read.
pub(super) type RawFacts = (Vec<Option<Vec<u8>>>, Option<Vec<u8>>);

type Call<T> = std::pin::Pin<Box<dyn Future<Output = RedisResult<T>> + Send + 'static>>;

/// `script` with `keys` and `args`.
pub(super) fn script_call<T: FromRedisValue + Send + 'static>(
    mut c: Conn,
    script: Script,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
) -> Call<T> {
    Box::pin(async move {
        let mut invocation = script.prepare_invoke();
        for k in &keys {
            invocation.key(k.as_slice());
        }
        for a in &args {
            invocation.arg(a.as_slice());
        }
        invocation.invoke_async(&mut c).await
    })
}

/// What a refresh classifies, in one atomic read of the family's slot: the family's
/// fields (`user`, `key`, `rev`, `end`, `dpop`) and the presented token's entry.
pub(super) fn facts_call(mut c: Conn, fid: &str, hash: &[u8]) -> Call<RawFacts> {
    let (family, token) = (family_key(fid), token_key(fid, hash));
    Box::pin(async move {
        redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(&family)
            .arg(&["user", "key", "rev", "end", "dpop"])
            .cmd("GET")
            .arg(&token)
            .query_async(&mut c)
            .await
    })
}

/// The family's facts as [`facts_call`] read them; `None` if the family is gone (or the
/// token's entry is).
pub(super) fn parse_facts((fields, entry): RawFacts) -> Result<Option<(FamilyFacts, Vec<u8>)>> {
    let [user, key, rev, end, dpop] = <[Option<Vec<u8>>; 5]>::try_from(fields)
        .map_err(|_| StoreError::Inconsistent("a family read is incomplete"))?;
    let Some(user) = user else {
        if key.is_some() || end.is_some() {
            return Err(StoreError::Inconsistent("a family without a user"));
        }
        return Ok(None);
    };
    let facts = FamilyFacts {
        user: String::from_utf8(user)
            .map_err(|_| StoreError::Inconsistent("a family's user is not text"))?,
        key: key.unwrap_or_default(),
        revoked: rev.is_some(),
        dpop_bound: dpop.is_some(),
        session_ends_at: end
            .as_deref()
            .and_then(|e| std::str::from_utf8(e).ok()?.parse().ok())
            .ok_or(StoreError::Inconsistent("a family without an end"))?,
    };
    Ok(entry.map(|raw| (facts, raw)))
}

/// The first half of a refresh in one handoff: the family of the token (its index, unless
/// an earlier attempt read it), then its facts and the key choice at the same time. `None`:
/// the token is not indexed.
pub(super) async fn read_step(
    c: Conn,
    fid: Option<String>,
    hash: TokenHash,
    grant: Script,
    exp: u64,
) -> RedisResult<Option<(String, RawFacts, Option<String>)>> {
    let fid = match fid {
        Some(fid) => fid,
        None => {
            let mut index = c.clone();
            let found: Option<String> = redis::cmd("GET")
                .arg(index_key(&hash))
                .query_async(&mut index)
                .await?;
            let Some(fid) = found else { return Ok(None) };
            fid
        }
    };
    let (facts, kid) = tokio::try_join!(
        facts_call(c.clone(), &fid, &hash),
        grant_call(c, &grant, exp)
    )?;
    Ok(Some((fid, facts, kid)))
}

/// The proof flag of the rotation scripts: `1` binds the family, `0` refuses a bound one.
pub(super) fn proof_arg(dpop: bool) -> Vec<u8> {
    if dpop { b"1" } else { b"0" }.to_vec()
}

/// Chooses the current signing key and records `exp` on it (one script on the keys'
/// slot, so a rotation or a purge is ordered before or after it).
pub(super) fn grant_call(c: Conn, script: &Script, exp: u64) -> Call<Option<String>> {
    script_call(
        c,
        script.clone(),
        vec![KEYS_CURRENT.as_bytes().to_vec()],
        vec![KEY_PREFIX.as_bytes().to_vec(), exp.to_string().into_bytes()],
    )
}

/// Pins the key [`grant_call`] chose in memory until the token's `exp`.
pub(super) fn finish_grant(kid: Option<String>, request: &GrantRequest<'_>) -> Result<AccessGrant> {
    request.pinned(kid.ok_or(StoreError::Inconsistent("no current signing key"))?)
}

/// Points the index of a refresh token at its family until the token expires.
pub(super) fn index_call(mut c: Conn, hash: &TokenHash, fid: &str, secs: u64) -> Call<()> {
    let (key, fid) = (index_key(hash), fid.to_owned());
    Box::pin(async move {
        redis::cmd("SET")
            .arg(key)
            .arg(fid)
            .arg("EX")
            .arg(secs)
            .query_async(&mut c)
            .await
    })
}

pub(super) fn user_call(mut c: Conn, username: &str) -> Call<HashMap<String, String>> {
    let key = user_key(username);
    Box::pin(async move { redis::cmd("HGETALL").arg(key).query_async(&mut c).await })
}

pub(super) fn parse_user(username: &str, map: &HashMap<String, String>) -> Option<User> {
    let (Some(hash), Some(name)) = (map.get("hash"), map.get("name")) else {
        return None;
    };
    Some(User {
        // Accounts are keyed by name here; the id only links SQLite rows.
        id: 0,
        username: username.to_owned(),
        password_hash: hash.clone(),
        name: name.clone(),
        roles: map
            .get("roles")
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default(),
    })
}
