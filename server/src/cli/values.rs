//! The value parsers of the flags: clap's error names the flag and quotes the value, then
//! the message of the parser. `--demo-user` is only wrapped here ([`Spec`]): it holds a
//! password, so it is parsed after clap.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{normalize_origin, SigningAlgorithm};

/// A `--demo-user` value as given: it holds a password, so `Debug` is redacted and the
/// text is zeroized on drop.
#[derive(Clone)]
pub(super) struct Spec(pub(super) String);

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spec([redacted])")
    }
}

impl Drop for Spec {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

pub(super) fn spec(v: &str) -> Result<Spec, String> {
    Ok(Spec(v.to_owned()))
}

pub(super) fn address(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "not an address like 127.0.0.1:8080".to_owned())
}

/// Whole seconds, at most ten years: keeps `now + ttl` far from overflow and every value
/// a valid JSON number for JavaScript.
pub(super) fn seconds(v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .ok()
        .filter(|s| *s <= 10 * 365 * 24 * 3600)
        .ok_or_else(|| "not a number of seconds".to_owned())
}

pub(super) fn positive(v: &str) -> Result<u64, String> {
    match seconds(v)? {
        0 => Err("must be at least 1".to_owned()),
        s => Ok(s),
    }
}

/// A timeout: whole seconds, at least 1, at most a day.
pub(super) fn timeout(v: &str) -> Result<Duration, String> {
    match positive(v)? {
        s if s <= 24 * 3600 => Ok(Duration::from_secs(s)),
        _ => Err("must be at most 86400 seconds".to_owned()),
    }
}

/// A small count (replays, threads, queue slots).
pub(super) fn count(v: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .ok()
        .filter(|n| *n <= 100_000)
        .ok_or_else(|| "not a count from 0 to 100000".to_owned())
}

pub(super) fn max_connections(v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))
        .ok_or_else(|| "not a number from 1 to 1000000".to_owned())
}

pub(super) fn origin(v: &str) -> Result<String, String> {
    normalize_origin(v)
}

pub(super) fn algorithm(v: &str) -> Result<SigningAlgorithm, String> {
    v.parse()
}
