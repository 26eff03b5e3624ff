//! Login throttling policy: how long a client must wait before its next password attempt.
//!
//! Pure code on plain numbers: the store only reads and writes the counters, atomically,
//! and hands them to [`Policy::admit`] and [`Policy::settle`]. Three counters judge every
//! attempt, each with the same rule shape (some free failures, then a delay that doubles
//! per failure up to a cap, forgotten after a quiet spell):
//!
//! - **pair** (account, client address): one attacker guessing one account. A success
//!   resets it, so the user's own typos never pile up.
//! - **account** (all addresses): one account guessed from many addresses. A client
//!   address that has signed in to the account successfully before is exempt from this
//!   counter, so a stranger cannot lock the user out from where they usually sign in; from
//!   a new address the wait is capped low.
//! - **address** (all accounts): one client trying many accounts. More free failures, since
//!   an office or a carrier NAT shares one address.
//!
//! An attempt is *charged* before its password is hashed (so a burst of parallel attempts
//! cannot all pass the check), and *refunded* when it turns out not to be a failure.
//! A refused (throttled) attempt costs nothing and changes nothing, so a stranger cannot
//! extend anyone's wait beyond the cap by hammering.

use std::net::IpAddr;

/// One counter as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counter {
    /// Failures counted (charged attempts that were not refunded).
    pub(crate) failures: u32,
    /// Unix seconds of the latest charge.
    pub(crate) last_failure: u64,
    /// When the row is useless and maintenance may delete it.
    pub(crate) expires_at: u64,
}

/// What the store must do with one counter row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    Keep,
    Set(Counter),
    Delete,
}

/// Backoff for one counter: `free` failures cost nothing, then the wait after each
/// failure is `base · 2^(failures − free)` seconds, at most `max_delay`; a counter with no
/// failure for `forget_after` seconds counts as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) free: u32,
    pub(crate) base: u64,
    pub(crate) max_delay: u64,
    pub(crate) forget_after: u64,
}

impl Rule {
    /// Wait imposed after `failures` failures.
    pub(crate) fn delay(&self, failures: u32) -> u64 {
        if failures < self.free {
            return 0;
        }
        let doublings = (failures - self.free).min(63);
        self.base
            .saturating_mul(1u64 << doublings)
            .min(self.max_delay)
    }

    /// Failures that still count at `now`.
    fn live(&self, counter: Option<Counter>, now: u64) -> u32 {
        match counter {
            Some(c) if now.saturating_sub(c.last_failure) < self.forget_after => c.failures,
            _ => 0,
        }
    }

    /// Seconds until an attempt is allowed; 0: now.
    pub(crate) fn wait(&self, counter: Option<Counter>, now: u64) -> u64 {
        match counter {
            Some(c) if self.live(counter, now) > 0 => c
                .last_failure
                .saturating_add(self.delay(c.failures))
                .saturating_sub(now),
            _ => 0,
        }
    }

    /// The counter after one more failure at `now`.
    pub(crate) fn charge(&self, counter: Option<Counter>, now: u64) -> Counter {
        Counter {
            failures: self.live(counter, now).saturating_add(1),
            last_failure: now,
            expires_at: now.saturating_add(self.forget_after),
        }
    }

    /// The counter with one charge taken back (the attempt was not a failure).
    fn refund(&self, counter: Option<Counter>) -> Write {
        match counter {
            Some(c) if c.failures > 1 => Write::Set(Counter {
                failures: c.failures - 1,
                ..c
            }),
            Some(_) => Write::Delete,
            None => Write::Keep,
        }
    }
}

/// The store keys of the counters that judge one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    pub(crate) pair: String,
    pub(crate) account: String,
    pub(crate) address: String,
    /// Present when this address has signed in to this account before.
    pub(crate) known: String,
}

impl Keys {
    /// All four, in the order [`Policy::admit`] and [`Policy::settle`] take them.
    pub(crate) fn all(&self) -> [&str; 4] {
        [&self.pair, &self.account, &self.address, &self.known]
    }
}

/// The client part of a key: an IPv4 address, or the /64 of an IPv6 address (one host
/// usually holds a whole /64, so a full address would be free to change per attempt).
pub(crate) fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// How an attempt was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Go ahead and check the password; the writes charge the attempt.
    Allowed([Write; 4]),
    /// Refused for this many seconds (`Retry-After`); nothing is written.
    Wait(u64),
}

/// How an admitted attempt ended, when it was not a failure (a failure keeps its
/// charge: nothing to settle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Signed in: the pair resets, the charge is refunded, the address becomes known.
    Succeeded,
    /// Never checked (the hashing queue was full): the charge is refunded.
    NotChecked,
}

/// The three rules, from `--login-max-delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) pair: Rule,
    pub(crate) account: Rule,
    pub(crate) address: Rule,
    /// How long a successful sign-in keeps an address known for its account.
    pub(crate) known_for: u64,
}

impl Policy {
    /// The policy whose longest wait is `max_delay` seconds; `None` (no throttling) for 0.
    pub(crate) fn new(max_delay: u64) -> Option<Self> {
        if max_delay == 0 {
            return None;
        }
        // Longer than the cap, or an attacker waiting out the cap would find the counter
        // forgotten and start over with free attempts.
        let forget_after = (2 * max_delay).max(15 * 60);
        Some(Self {
            pair: Rule {
                free: 5,
                base: 1,
                max_delay,
                forget_after,
            },
            // From an address the account has never signed in from: a stranger's guesses
            // elsewhere make a real user wait at most a minute per attempt.
            account: Rule {
                free: 10,
                base: 1,
                max_delay: max_delay.min(60),
                forget_after,
            },
            address: Rule {
                free: 20,
                base: 1,
                max_delay,
                forget_after,
            },
            known_for: 30 * 24 * 3600,
        })
    }

    /// The keys for `username` tried from `ip`.
    pub(crate) fn keys(username: &str, ip: IpAddr) -> Keys {
        let client = client_key(ip);
        Keys {
            pair: format!("pair\u{0}{username}\u{0}{client}"),
            account: format!("account\u{0}{username}"),
            address: format!("address\u{0}{client}"),
            known: format!("known\u{0}{username}\u{0}{client}"),
        }
    }

    /// Judges an attempt at `now` on the counters of [`Keys::all`].
    pub(crate) fn admit(&self, counters: [Option<Counter>; 4], now: u64) -> Admission {
        let [pair, account, address, known] = counters;
        let known = known.is_some_and(|k| k.expires_at > now);
        let mut wait = self
            .pair
            .wait(pair, now)
            .max(self.address.wait(address, now));
        if !known {
            wait = wait.max(self.account.wait(account, now));
        }
        if wait > 0 {
            return Admission::Wait(wait);
        }
        Admission::Allowed([
            Write::Set(self.pair.charge(pair, now)),
            Write::Set(self.account.charge(account, now)),
            Write::Set(self.address.charge(address, now)),
            Write::Keep,
        ])
    }

    /// Settles an admitted attempt on the counters as they are now.
    pub(crate) fn settle(
        &self,
        counters: [Option<Counter>; 4],
        outcome: Outcome,
        now: u64,
    ) -> [Write; 4] {
        let [pair, account, address, _] = counters;
        match outcome {
            Outcome::NotChecked => [
                self.pair.refund(pair),
                self.account.refund(account),
                self.address.refund(address),
                Write::Keep,
            ],
            Outcome::Succeeded => [
                Write::Delete,
                self.account.refund(account),
                self.address.refund(address),
                Write::Set(Counter {
                    failures: 0,
                    last_failure: now,
                    expires_at: now.saturating_add(self.known_for),
                }),
            ],
        }
    }
}

#[cfg(test)]
mod tests;
