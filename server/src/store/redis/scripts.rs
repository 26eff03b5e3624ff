//! The Lua scripts: each applies one decision atomically on one slot.

use redis::Script;

pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) rotate: Script,
    pub(super) grace: Script,
    pub(super) revoke: Script,
    pub(super) throttle: Script,
    pub(super) install_key: Script,
    pub(super) load_keys: Script,
    pub(super) grant: Script,
    pub(super) purge_keys: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            create: Script::new(CREATE),
            rotate: Script::new(&format!("{STEP}{ROTATE}")),
            grace: Script::new(&format!("{STEP}{GRACE}")),
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
// value, family ttl, token ttl, proof ('1': the family starts DPoP-bound).
pub(super) const CREATE: &str = r"
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'key', ARGV[2], 'created', ARGV[3],
  'exp', ARGV[4], 'amax', ARGV[5], 'end', ARGV[6])
if ARGV[10] == '1' then redis.call('HSET', KEYS[1], 'dpop', '1') end
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('SET', KEYS[2], ARGV[7], 'EX', ARGV[9])
return 1
";

// What the rotation and the grace replay share. KEYS[1] is the family, KEYS[2] the
// presented token, ARGV[1] its value as classified. `unchanged(proof)`: the facts the
// decision was made on still hold (the family exists and is unrevoked, unbound unless a
// proof came (`proof` '1'), the token's value unchanged); `bind(proof)` binds the family
// with a proof; `raise` only raises a number; `keep(ttl)` only lengthens the family's TTL.
const STEP: &str = r"
local function raise(field, value)
  local old = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if tonumber(value) > old then redis.call('HSET', KEYS[1], field, value) end
end
local function unchanged(proof)
  return redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'rev') == 0
    and (proof == '1' or redis.call('HEXISTS', KEYS[1], 'dpop') == 0)
    and redis.call('GET', KEYS[2]) == ARGV[1]
end
local function bind(proof)
  if proof == '1' then redis.call('HSET', KEYS[1], 'dpop', '1') end
end
local function keep(ttl)
  if redis.call('TTL', KEYS[1]) < tonumber(ttl) then redis.call('EXPIRE', KEYS[1], ttl) end
end
";

// Rotation. KEYS: family, presented token, successor. ARGV: the presented token's value as
// classified, its rotated value, the successor's value, the successor's ttl, new family
// exp, access exp, family ttl, proof ('1': bind the family; '0': the family must not be
// bound). Applies nothing (0) unless the facts are unchanged. The rotated token keeps its
// own TTL (its expiry).
const ROTATE: &str = r"
if not unchanged(ARGV[8]) then return 0 end
bind(ARGV[8])
redis.call('SET', KEYS[2], ARGV[2], 'KEEPTTL')
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
raise('exp', ARGV[5])
raise('amax', ARGV[6])
keep(ARGV[7])
return 1
";

// Grace replay. KEYS: family, presented token, current token. ARGV: the presented token's
// value as classified, its value with one more replay, the current token's value as read,
// access exp, family ttl, proof (as for a rotation).
const GRACE: &str = r"
if not unchanged(ARGV[6]) or redis.call('GET', KEYS[3]) ~= ARGV[3] then return 0 end
bind(ARGV[6])
redis.call('SET', KEYS[2], ARGV[2], 'KEEPTTL')
raise('amax', ARGV[4])
keep(ARGV[5])
return 1
";

// KEYS: family. ARGV: now, reason, overwrite ('1': a replay records its reason even if
// the family was revoked meanwhile). 1 if this call revoked it.
pub(super) const REVOKE: &str = r"
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
pub(super) const THROTTLE: &str = r"
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
pub(super) const INSTALL_KEY: &str = r"
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
pub(super) const LOAD_KEYS: &str = r"
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
pub(super) const GRANT: &str = r"
local kid = redis.call('GET', KEYS[1])
if not kid then return false end
local k = ARGV[1] .. kid
local last = tonumber(redis.call('HGET', k, 'last') or '0')
if tonumber(ARGV[2]) > last then redis.call('HSET', k, 'last', ARGV[2]) end
return kid
";

// KEYS: all. ARGV: prefix, now. Deletes retired keys whose last token expired.
pub(super) const PURGE_KEYS: &str = r"
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
