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
//! | `tm:{<fid>}:f` | hash | family: `user`, `key`, `created`, `exp`, `amax`, `end`, `rev`, `why` |
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

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Script, Value};

use super::kek::KeyEncryptionKey;
use super::{
    AccessGrant, AccessState, CleanupReport, GrantRequest, Issued, RefreshTokenStatus, Refused,
    Result, RowCounts, Store, StoreError, StoredKey, User, MAX_CHAIN,
};
use crate::refresh::{
    classify, new_family_key, Presented, RefreshToken, SessionRules, TokenFacts, TokenHash,
};
use crate::throttle::{Counter, Write};

/// How often one operation starts over after losing a compare-and-set to a concurrent
/// one. Every lost round means another request made progress, so this bounds the number
/// of requests racing on one family (or one throttle counter) at the same moment.
const MAX_ATTEMPTS: usize = 200;

/// A command that gets no answer in this time fails as "unavailable" (503), rather than
/// holding a blocking thread for as long as the store is gone.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

fn redis_error(e: RedisError) -> StoreError {
    // Kind and code only: the text of some errors quotes arguments.
    let what = format!(
        "redis {:?}{}",
        e.kind(),
        e.code().map(|c| format!(" {c}")).unwrap_or_default()
    );
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        StoreError::Unavailable(what)
    } else {
        StoreError::Backend(what)
    }
}

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

struct Scripts {
    create: Script,
    rotate: Script,
    grace: Script,
    revoke: Script,
    throttle: Script,
    install_key: Script,
    load_keys: Script,
    grant: Script,
    purge_keys: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            create: Script::new(CREATE),
            rotate: Script::new(ROTATE),
            grace: Script::new(GRACE),
            revoke: Script::new(REVOKE),
            throttle: Script::new(THROTTLE),
            install_key: Script::new(INSTALL_KEY),
            load_keys: Script::new(LOAD_KEYS),
            grant: Script::new(GRANT),
            purge_keys: Script::new(PURGE_KEYS),
        }
    }
}

// KEYS: family, its first token. ARGV: user, successor key, created, exp, amax, end, token
// value, family ttl, token ttl.
const CREATE: &str = r"
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'key', ARGV[2], 'created', ARGV[3],
  'exp', ARGV[4], 'amax', ARGV[5], 'end', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('SET', KEYS[2], ARGV[7], 'EX', ARGV[9])
return 1
";

// Rotation. KEYS: family, presented token, successor. ARGV: the presented token's value as
// classified, its rotated value, the successor's value, the successor's ttl, new family
// exp, access exp, family ttl. Applies nothing (0) unless the family is unrevoked and the
// presented token unchanged. The rotated token keeps its own TTL (its expiry).
const ROTATE: &str = r"
local function raise(field, value)
  local old = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if tonumber(value) > old then redis.call('HSET', KEYS[1], field, value) end
end
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'rev') == 1
  or redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'KEEPTTL')
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
raise('exp', ARGV[5])
raise('amax', ARGV[6])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[7]) then redis.call('EXPIRE', KEYS[1], ARGV[7]) end
return 1
";

// Grace replay. KEYS: family, presented token, current token. ARGV: the presented token's
// value as classified, its value with one more replay, the current token's value as read,
// access exp, family ttl.
const GRACE: &str = r"
local function raise(field, value)
  local old = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if tonumber(value) > old then redis.call('HSET', KEYS[1], field, value) end
end
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'rev') == 1
  or redis.call('GET', KEYS[2]) ~= ARGV[1]
  or redis.call('GET', KEYS[3]) ~= ARGV[3] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'KEEPTTL')
raise('amax', ARGV[4])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
return 1
";

// KEYS: family. ARGV: now, reason, overwrite ('1': a replay records its reason even if
// the family was revoked meanwhile). 1 if this call revoked it.
const REVOKE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'rev', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'why', ARGV[2])
  return 1
end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'why', ARGV[2]) end
return 0
";

// KEYS: 4 counters. ARGV: their 4 values as read ('' for none), then per key an op
// ('k' keep, 'd' delete, 's' set), a value and a ttl. 0 if any counter changed meanwhile.
const THROTTLE: &str = r"
for i = 1, 4 do
  if (redis.call('GET', KEYS[i]) or '') ~= ARGV[i] then return 0 end
end
for i = 1, 4 do
  local op = ARGV[4 + 3 * (i - 1) + 1]
  if op == 'd' then
    redis.call('DEL', KEYS[i])
  elseif op == 's' then
    redis.call('SET', KEYS[i], ARGV[4 + 3 * (i - 1) + 2], 'EX', ARGV[4 + 3 * (i - 1) + 3])
  end
end
return 1
";

// KEYS: all, current, the new key's hash. ARGV: kid, alg, sealed der, created, now,
// prefix of key hashes.
const INSTALL_KEY: &str = r"
for _, kid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ARGV[6] .. kid
  if redis.call('HEXISTS', k, 'retired') == 0 then redis.call('HSET', k, 'retired', ARGV[5]) end
end
redis.call('HSET', KEYS[3], 'alg', ARGV[2], 'der', ARGV[3], 'created', ARGV[4], 'last', '0')
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return 1
";

// KEYS: all. ARGV: prefix. Flat list of kid, alg, der, created, retired ('' if none), last.
const LOAD_KEYS: &str = r"
local out = {}
for _, kid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('HMGET', ARGV[1] .. kid, 'alg', 'der', 'created', 'retired', 'last')
  if v[1] then
    table.insert(out, kid)
    table.insert(out, v[1])
    table.insert(out, v[2])
    table.insert(out, v[3])
    table.insert(out, v[4] or '')
    table.insert(out, v[5] or '0')
  end
end
return out
";

// KEYS: current. ARGV: prefix, exp. Chooses the current key and records exp on it.
const GRANT: &str = r"
local kid = redis.call('GET', KEYS[1])
if not kid then return false end
local k = ARGV[1] .. kid
local last = tonumber(redis.call('HGET', k, 'last') or '0')
if tonumber(ARGV[2]) > last then redis.call('HSET', k, 'last', ARGV[2]) end
return kid
";

// KEYS: all. ARGV: prefix, now. Deletes retired keys whose last token expired.
const PURGE_KEYS: &str = r"
local out = {}
for _, kid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ARGV[1] .. kid
  local v = redis.call('HMGET', k, 'retired', 'last')
  if v[1] and tonumber(v[2] or '0') <= tonumber(ARGV[2]) then
    redis.call('DEL', k)
    redis.call('SREM', KEYS[1], kid)
    table.insert(out, kid)
  end
end
return out
";

const KEYS_ALL: &str = "tm:{keys}:all";
const KEYS_CURRENT: &str = "tm:{keys}:current";
const KEY_PREFIX: &str = "tm:{keys}:k:";

fn user_key(username: &str) -> Vec<u8> {
    let mut k = b"tm:u:".to_vec();
    k.extend_from_slice(username.as_bytes());
    k
}

fn index_key(hash: &TokenHash) -> String {
    format!("tm:t:{}", hex(hash))
}

fn family_key(fid: &str) -> String {
    format!("tm:{{{fid}}}:f")
}

/// A refresh token of family `fid`, in its family's slot, expiring with the token.
fn token_key(fid: &str, hash: &[u8]) -> Vec<u8> {
    format!("tm:{{{fid}}}:t:{}", hex(hash)).into_bytes()
}

fn deny_key(jti: &str) -> Vec<u8> {
    let mut k = b"tm:d:".to_vec();
    k.extend_from_slice(jti.as_bytes());
    k
}

fn throttle_key(key: &str) -> Vec<u8> {
    let mut k = b"tm:{thr}:".to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Seconds from `now` until `at`, at least 1 (Redis refuses 0).
fn ttl(at: u64, now: u64) -> u64 {
    at.saturating_sub(now).max(1)
}

/// A token entry: `exp|rotated|grace_replays`, `rotated` empty while current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TokenEntry {
    expires_at: u64,
    rotated_at: Option<u64>,
    grace_replays: u32,
}

impl TokenEntry {
    fn encode(&self) -> String {
        format!(
            "{}|{}|{}",
            self.expires_at,
            self.rotated_at.map(|r| r.to_string()).unwrap_or_default(),
            self.grace_replays
        )
    }

    fn decode(s: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(s).ok()?;
        let mut parts = s.split('|');
        let expires_at = parts.next()?.parse().ok()?;
        let rotated_at = match parts.next()? {
            "" => None,
            r => Some(r.parse().ok()?),
        };
        let grace_replays = parts.next()?.parse().ok()?;
        Some(Self {
            expires_at,
            rotated_at,
            grace_replays,
        })
    }
}

fn encode_counter(c: &Counter) -> String {
    format!("{}|{}|{}", c.failures, c.last_failure, c.expires_at)
}

fn decode_counter(s: &[u8]) -> Option<Counter> {
    let s = std::str::from_utf8(s).ok()?;
    let mut parts = s.split('|');
    Some(Counter {
        failures: parts.next()?.parse().ok()?,
        last_failure: parts.next()?.parse().ok()?,
        expires_at: parts.next()?.parse().ok()?,
    })
}

/// What a refresh reads about a family.
struct FamilyFacts {
    user: String,
    key: Vec<u8>,
    revoked: bool,
    session_ends_at: u64,
}

impl Drop for FamilyFacts {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

fn field_u64(map: &HashMap<String, Vec<u8>>, name: &str) -> Option<u64> {
    std::str::from_utf8(map.get(name)?).ok()?.parse().ok()
}

impl RedisStore {
    /// Connects to `url` (`redis://…`, or `redis+cluster://host:port[,host:port…]` for a
    /// cluster). Fails if the store does not answer.
    pub(crate) fn open(url: &str, kek: KeyEncryptionKey) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redis-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot start the redis runtime: {e}")))?;
        let (conn, cluster) = if let Some(nodes) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = nodes
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| format!("redis://{n}"))
                .collect();
            let client = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .build()
                .map_err(redis_error)?;
            let conn = runtime
                .block_on(client.get_async_connection())
                .map_err(redis_error)?;
            (Conn::Cluster(conn), true)
        } else {
            let client = redis::Client::open(url).map_err(redis_error)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            let conn = runtime
                .block_on(client.get_connection_manager_with_config(config))
                .map_err(redis_error)?;
            (Conn::Single(conn), false)
        };
        let store = Self {
            runtime: Some(runtime),
            conn,
            cluster,
            kek,
            scripts: Scripts::new(),
        };
        store.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })?;
        Ok(store)
    }

    /// Runs `f` on the store's runtime with a clone of the connection and waits for it.
    ///
    /// A command that failed because the connection was gone (Redis restarted, a
    /// failover) runs once more on the connection the manager re-establishes, so service
    /// resumes with the first request after Redis is back. Running a step twice is safe:
    /// writes are idempotent or compare-and-set, and a second compare-and-set of a step
    /// that was applied finds the facts changed and starts over on the new ones.
    fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Conn) -> Fut + Clone,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        match self.run_once(f.clone()) {
            Err(e) if e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error() => {
                self.run_once(f).map_err(redis_error)
            }
            other => other.map_err(redis_error),
        }
    }

    fn run_once<T, F, Fut>(&self, f: F) -> redis::RedisResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let closed = || RedisError::from(std::io::Error::other("the redis store is closed"));
        let Some(rt) = self.runtime.as_ref() else {
            return Err(closed());
        };
        let fut = f(self.conn.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| closed())?
    }

    fn script<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: &Script,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
    ) -> Result<T> {
        let script = script.clone();
        self.run(move |mut c| async move {
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

    fn family_of(&self, hash: &TokenHash) -> Result<Option<String>> {
        let key = index_key(hash);
        self.run(move |mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
    }

    fn read_family(&self, fid: &str) -> Result<Option<FamilyFacts>> {
        let key = family_key(fid);
        let map: HashMap<String, Vec<u8>> = self.run(move |mut c| async move {
            redis::cmd("HGETALL").arg(key).query_async(&mut c).await
        })?;
        if map.is_empty() {
            return Ok(None);
        }
        let user = map
            .get("user")
            .and_then(|u| String::from_utf8(u.clone()).ok())
            .ok_or(StoreError::Inconsistent("a family without a user"))?;
        Ok(Some(FamilyFacts {
            user,
            key: map.get("key").cloned().unwrap_or_default(),
            revoked: map.contains_key("rev"),
            session_ends_at: field_u64(&map, "end")
                .ok_or(StoreError::Inconsistent("a family without an end"))?,
        }))
    }

    fn token_entries(&self, fid: &str, hashes: Vec<Vec<u8>>) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<Vec<u8>> = hashes.iter().map(|h| token_key(fid, h)).collect();
        self.run(move |mut c| async move {
            let mut cmd = redis::cmd("MGET");
            for k in &keys {
                cmd.arg(k.as_slice());
            }
            cmd.query_async(&mut c).await
        })
    }

    fn revoke(&self, fid: &str, now: u64, reason: &str, overwrite: bool) -> Result<bool> {
        let changed: i64 = self.script(
            &self.scripts.revoke,
            vec![family_key(fid).into_bytes()],
            vec![
                now.to_string().into_bytes(),
                reason.as_bytes().to_vec(),
                if overwrite {
                    b"1".to_vec()
                } else {
                    b"0".to_vec()
                },
            ],
        )?;
        Ok(changed == 1)
    }

    /// Chooses the current signing key and records `exp` on it (one script on the keys'
    /// slot, so a rotation or a purge is ordered before or after it), then pins it.
    fn grant(&self, request: &GrantRequest<'_>) -> Result<AccessGrant> {
        let kid: Option<String> = self.script(
            &self.scripts.grant,
            vec![KEYS_CURRENT.as_bytes().to_vec()],
            vec![
                KEY_PREFIX.as_bytes().to_vec(),
                request.exp.to_string().into_bytes(),
            ],
        )?;
        let kid = kid.ok_or(StoreError::Inconsistent("no current signing key"))?;
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

    fn set_index(&self, hash: &TokenHash, fid: &str, expires_at: u64, now: u64) -> Result<()> {
        let key = index_key(hash);
        let fid = fid.to_owned();
        let secs = ttl(expires_at, now);
        self.run(move |mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(fid)
                .arg("EX")
                .arg(secs)
                .query_async::<()>(&mut c)
                .await
        })
    }

    fn count(&self, pattern: &'static str) -> Result<usize> {
        if self.cluster {
            return Err(StoreError::Backend(
                "row counts are not available on a cluster".into(),
            ));
        }
        self.run(move |mut c| async move {
            let mut cursor: u64 = 0;
            let mut n = 0usize;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await?;
                n += keys.len();
                if next == 0 {
                    return Ok(n);
                }
                cursor = next;
            }
        })
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
        let key = user_key(username);
        let map: HashMap<String, String> = self.run(move |mut c| async move {
            redis::cmd("HGETALL").arg(key).query_async(&mut c).await
        })?;
        let (Some(hash), Some(name)) = (map.get("hash"), map.get("name")) else {
            return Ok(None);
        };
        Ok(Some(User {
            // Accounts are keyed by name here; the id only links SQLite rows.
            id: 0,
            username: username.to_owned(),
            password_hash: hash.clone(),
            name: name.clone(),
            roles: map
                .get("roles")
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default(),
        }))
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

    fn login(
        &self,
        user: User,
        previous: &[TokenHash],
        now: u64,
        rules: &SessionRules,
        grant: &GrantRequest<'_>,
    ) -> Result<(Issued, Vec<String>)> {
        let mut revoked = Vec::new();
        for hash in previous {
            if let Some(fid) = self.family_of(hash)? {
                if self.revoke(&fid, now, "login", false)? {
                    revoked.push(fid);
                }
            }
        }
        let grant = self.grant(grant)?;
        let family_id = crate::refresh::random_id();
        let key = zeroize::Zeroizing::new(new_family_key());
        let token = RefreshToken::generate();
        let session_ends_at = now.saturating_add(rules.max_age);
        let expires_at = rules.token_expiry(now, session_ends_at);
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
            ],
        )?;
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

    fn refresh(
        &self,
        presented: &RefreshToken,
        now: u64,
        rules: &SessionRules,
        grant: &GrantRequest<'_>,
    ) -> Result<std::result::Result<Issued, Refused>> {
        let hash = presented.hash();
        let Some(fid) = self.family_of(&hash)? else {
            return Ok(Err(Refused::Unknown));
        };
        for _ in 0..MAX_ATTEMPTS {
            let Some(family) = self.read_family(&fid)? else {
                return Ok(Err(Refused::Unknown));
            };
            let Some(raw) = self
                .token_entries(&fid, vec![hash.to_vec()])?
                .pop()
                .flatten()
            else {
                return Ok(Err(Refused::Unknown));
            };
            let entry = TokenEntry::decode(&raw)
                .ok_or(StoreError::Inconsistent("a token entry is malformed"))?;
            let facts = TokenFacts {
                expires_at: entry.expires_at,
                rotated_at: entry.rotated_at,
                grace_replays: entry.grace_replays,
                family_revoked: family.revoked,
                session_ends_at: family.session_ends_at,
            };
            let (token, expires_at, grace_replay, granted) = match classify(&facts, now, rules) {
                Presented::FamilyRevoked => return Ok(Err(Refused::Revoked)),
                Presented::Expired => return Ok(Err(Refused::Expired)),
                Presented::SessionEnded => return Ok(Err(Refused::SessionEnded)),
                Presented::Replayed => {
                    let reason = if entry
                        .rotated_at
                        .is_some_and(|at| now.saturating_sub(at) <= rules.grace)
                    {
                        "replay_cap"
                    } else {
                        "reuse"
                    };
                    self.revoke(&fid, now, reason, true)?;
                    return Ok(Err(Refused::ReuseDetected { family_id: fid }));
                }
                Presented::Current => {
                    let next = presented.successor(&family.key);
                    let expires_at = rules.token_expiry(now, family.session_ends_at);
                    let granted = self.grant(grant)?;
                    self.set_index(&next.hash(), &fid, expires_at, now)?;
                    let rotated = TokenEntry {
                        rotated_at: Some(now),
                        ..entry
                    };
                    let fresh = TokenEntry {
                        expires_at,
                        rotated_at: None,
                        grace_replays: 0,
                    };
                    let applied: i64 = self.script(
                        &self.scripts.rotate,
                        vec![
                            family_key(&fid).into_bytes(),
                            token_key(&fid, &hash),
                            token_key(&fid, &next.hash()),
                        ],
                        vec![
                            raw.clone(),
                            rotated.encode().into_bytes(),
                            fresh.encode().into_bytes(),
                            ttl(expires_at, now).to_string().into_bytes(),
                            expires_at.to_string().into_bytes(),
                            granted.exp.to_string().into_bytes(),
                            ttl(expires_at.max(granted.exp), now)
                                .to_string()
                                .into_bytes(),
                        ],
                    )?;
                    if applied != 1 {
                        continue;
                    }
                    (next, expires_at, false, granted)
                }
                Presented::RotatedWithinGrace => {
                    // The chain, computed here (the derivation key never leaves this
                    // process), read in one command; the first current link is the token
                    // the winner of the race already received.
                    let mut chain = Vec::with_capacity(MAX_CHAIN);
                    let mut candidate = presented.successor(&family.key);
                    for _ in 0..MAX_CHAIN {
                        let next = candidate.successor(&family.key);
                        chain.push(candidate);
                        candidate = next;
                    }
                    let entries = self
                        .token_entries(&fid, chain.iter().map(|t| t.hash().to_vec()).collect())?;
                    let mut found = None;
                    for (token, raw_entry) in chain.into_iter().zip(entries) {
                        let Some(raw_entry) = raw_entry else { break };
                        let Some(e) = TokenEntry::decode(&raw_entry) else {
                            break;
                        };
                        if e.rotated_at.is_none() {
                            found = Some((token, e, raw_entry));
                            break;
                        }
                    }
                    let Some((current, current_entry, current_raw)) = found else {
                        return Ok(Err(Refused::Unknown));
                    };
                    if current_entry.expires_at <= now {
                        return Ok(Err(Refused::Unknown));
                    }
                    let granted = self.grant(grant)?;
                    let replayed = TokenEntry {
                        grace_replays: entry.grace_replays.saturating_add(1),
                        ..entry
                    };
                    let applied: i64 = self.script(
                        &self.scripts.grace,
                        vec![
                            family_key(&fid).into_bytes(),
                            token_key(&fid, &hash),
                            token_key(&fid, &current.hash()),
                        ],
                        vec![
                            raw.clone(),
                            replayed.encode().into_bytes(),
                            current_raw,
                            granted.exp.to_string().into_bytes(),
                            ttl(current_entry.expires_at.max(granted.exp), now)
                                .to_string()
                                .into_bytes(),
                        ],
                    )?;
                    if applied != 1 {
                        continue;
                    }
                    (current, current_entry.expires_at, true, granted)
                }
            };
            let user = self
                .find_user(&family.user)?
                .ok_or(StoreError::Inconsistent("the family's account is gone"))?;
            return Ok(Ok(Issued {
                token,
                expires_at,
                family_id: fid,
                user,
                grace_replay,
                grant: granted,
            }));
        }
        Err(StoreError::Unavailable(
            "too many concurrent refreshes of one session".into(),
        ))
    }

    fn logout(
        &self,
        cookie: Option<&TokenHash>,
        deny: Option<(&str, u64, &str)>,
        now: u64,
    ) -> Result<Option<String>> {
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
        let deny = deny_key(jti);
        let denied: bool = self.run(move |mut c| async move {
            redis::cmd("EXISTS").arg(deny).query_async(&mut c).await
        })?;
        if denied {
            return Ok(AccessState::Denylisted);
        }
        let fam = family_key(sid);
        let (exists, revoked): (bool, bool) = self.run(move |mut c| async move {
            let exists: bool = redis::cmd("EXISTS").arg(&fam).query_async(&mut c).await?;
            let revoked: bool = redis::cmd("HEXISTS")
                .arg(&fam)
                .arg("rev")
                .query_async(&mut c)
                .await?;
            Ok((exists, revoked))
        })?;
        Ok(match (exists, revoked) {
            (false, _) => AccessState::SessionUnknown,
            (true, true) => AccessState::SessionRevoked,
            (true, false) => AccessState::Allowed,
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
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| throttle_key(k)).collect();
        for _ in 0..MAX_ATTEMPTS {
            let read = keys.clone();
            let values: Vec<Option<Vec<u8>>> = self.run(move |mut c| async move {
                let mut cmd = redis::cmd("MGET");
                for k in &read {
                    cmd.arg(k.as_slice());
                }
                cmd.query_async(&mut c).await
            })?;
            let mut counters = [None; 4];
            for (counter, v) in counters.iter_mut().zip(&values) {
                *counter = v.as_deref().and_then(decode_counter);
            }
            let writes = decide(counters);
            let now_hint = counters
                .iter()
                .flatten()
                .map(|c| c.last_failure)
                .max()
                .unwrap_or(0);
            let mut args: Vec<Vec<u8>> = values
                .iter()
                .map(|v| v.clone().unwrap_or_default())
                .collect();
            for write in writes {
                match write {
                    Write::Keep => args.extend([b"k".to_vec(), Vec::new(), Vec::new()]),
                    Write::Delete => args.extend([b"d".to_vec(), Vec::new(), Vec::new()]),
                    Write::Set(c) => {
                        // Its lifetime relative to its own latest charge, which is "now"
                        // for the policy that just wrote it.
                        let from = c.last_failure.max(now_hint);
                        args.extend([
                            b"s".to_vec(),
                            encode_counter(&c).into_bytes(),
                            ttl(c.expires_at, from).to_string().into_bytes(),
                        ]);
                    }
                }
            }
            let applied: i64 = self.script(&self.scripts.throttle, keys.clone(), args)?;
            if applied == 1 {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(
            "too many concurrent logins for one account".into(),
        ))
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
}
