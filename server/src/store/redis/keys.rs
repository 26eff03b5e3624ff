//! Key names (hash-tagged per family) and the encodings of the values stored under them.

use std::collections::HashMap;

use crate::refresh::TokenHash;
use crate::throttle::Counter;

pub(super) const KEYS_ALL: &str = "tm:{keys}:all";
pub(super) const KEYS_CURRENT: &str = "tm:{keys}:current";
pub(super) const KEY_PREFIX: &str = "tm:{keys}:k:";

pub(super) fn user_key(username: &str) -> Vec<u8> {
    let mut k = b"tm:u:".to_vec();
    k.extend_from_slice(username.as_bytes());
    k
}

pub(super) fn index_key(hash: &TokenHash) -> String {
    format!("tm:t:{}", hex(hash))
}

pub(super) fn family_key(fid: &str) -> String {
    format!("tm:{{{fid}}}:f")
}

/// A refresh token of family `fid`, in its family's slot, expiring with the token.
pub(super) fn token_key(fid: &str, hash: &[u8]) -> Vec<u8> {
    format!("tm:{{{fid}}}:t:{}", hex(hash)).into_bytes()
}

pub(super) fn deny_key(jti: &str) -> Vec<u8> {
    let mut k = b"tm:d:".to_vec();
    k.extend_from_slice(jti.as_bytes());
    k
}

pub(super) fn throttle_key(key: &str) -> Vec<u8> {
    let mut k = b"tm:{thr}:".to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Seconds from `now` until `at`, at least 1 (Redis refuses 0).
pub(super) fn ttl(at: u64, now: u64) -> u64 {
    at.saturating_sub(now).max(1)
}

/// A token entry: `exp|rotated|grace_replays`, `rotated` empty while current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TokenEntry {
    pub(super) expires_at: u64,
    pub(super) rotated_at: Option<u64>,
    pub(super) grace_replays: u32,
}

impl TokenEntry {
    pub(super) fn encode(&self) -> String {
        format!(
            "{}|{}|{}",
            self.expires_at,
            self.rotated_at.map(|r| r.to_string()).unwrap_or_default(),
            self.grace_replays
        )
    }

    pub(super) fn decode(s: &[u8]) -> Option<Self> {
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

pub(super) fn encode_counter(c: &Counter) -> String {
    format!("{}|{}|{}", c.failures, c.last_failure, c.expires_at)
}

pub(super) fn decode_counter(s: &[u8]) -> Option<Counter> {
    let s = std::str::from_utf8(s).ok()?;
    let mut parts = s.split('|');
    Some(Counter {
        failures: parts.next()?.parse().ok()?,
        last_failure: parts.next()?.parse().ok()?,
        expires_at: parts.next()?.parse().ok()?,
    })
}

/// What a refresh reads about a family.
pub(super) struct FamilyFacts {
    pub(super) user: String,
    pub(super) key: Vec<u8>,
    pub(super) revoked: bool,
    pub(super) dpop_bound: bool,
    pub(super) session_ends_at: u64,
}

impl Drop for FamilyFacts {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

pub(super) fn field_u64(map: &HashMap<String, Vec<u8>>, name: &str) -> Option<u64> {
    std::str::from_utf8(map.get(name)?).ok()?.parse().ok()
}
