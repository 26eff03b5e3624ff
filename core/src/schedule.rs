//! The timing policy: when to refresh, how long a token may be offered, how to back off.
//!
//! Pure functions of a [`Config`], the token's lifetime and a seeded [`Rng`]. All times are
//! measured on the local clock from the moment a token was *received*, using the lifetime the
//! server stated (`expires_in`), so the difference between client and server clocks — hours,
//! on real laptops — never enters the computation.

use std::time::Duration;

use crate::claims::Claims;
use crate::time::Timestamp;

/// Every knob of the timing policy. Each field documents its default ([`Config::default`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Smallest refresh lead: refresh starts at least this long before expiry.
    /// Defaults to 60 s.
    pub refresh_lead_min: Duration,
    /// Refresh lead as a fraction of the lifetime, when that is larger than `refresh_lead_min`.
    /// Defaults to 0.2 (a 15-minute token refreshes 3 minutes before expiry).
    pub refresh_lead_fraction: f64,
    /// Largest lead as a fraction of the lifetime, so a short token is used before it is
    /// renewed (a 30 s token refreshes after 15 s, not at once). Defaults to 0.5.
    pub refresh_lead_max_fraction: f64,
    /// Random extra lead, as a fraction of the lead, so tabs and users do not refresh in
    /// lockstep. Defaults to 0.25.
    pub refresh_jitter_fraction: f64,
    /// A token is no longer offered this long before it expires, to allow for the request's
    /// transit time. Capped at a tenth of the lifetime. Defaults to 5 s.
    pub leeway: Duration,
    /// First backoff ceiling after a transient failure. Defaults to 1 s.
    pub retry_base: Duration,
    /// Largest backoff ceiling; attempt *n* waits a uniformly random time in
    /// `0..=min(retry_cap, retry_base * 2^(n-1))` ("full jitter"). Defaults to 120 s.
    pub retry_cap: Duration,
    /// Longest `Retry-After` honoured; a server asking for more gets this. Defaults to 600 s.
    pub retry_after_cap: Duration,
    /// At most this many refresh requests start within `refresh_budget_window`, whatever the
    /// server says (a server answering `expires_in: 1` cannot cause a storm). Defaults to 12.
    pub refresh_budget: u32,
    /// The window of `refresh_budget`. Defaults to 60 s.
    pub refresh_budget_window: Duration,
    /// A refresh that has not completed after this long is abandoned and counted as a
    /// transient failure. Defaults to 10 s.
    pub request_timeout: Duration,
    /// On restore, how long to wait for another tab to share its token before calling the
    /// refresh endpoint; `None` skips asking. Defaults to 100 ms.
    pub sibling_wait: Option<Duration>,
    /// How long a refresh waits for the cross-tab lock before taking it over from its holder
    /// (the driver asks with [`crate::session::Action::StealLock`]): a tab that holds the lock
    /// and stopped (frozen, paused in a debugger, crashed mid-refresh) cannot block the others.
    /// A live holder gives the lock back within its own `request_timeout`, so that plus a margin
    /// is the right value (the browser layer uses `request_timeout` + 1 s). `None` (the default
    /// here): no acquire timeout, for drivers without a lock.
    pub lock_timeout: Option<Duration>,
    /// After a *contended* grant of the cross-tab lock (another tab held it), how long to wait
    /// for that tab's announcement before calling the endpoint. The holder announces its token
    /// before it lets go, but the grant and the message reach this tab by different paths, in
    /// either order; a token announced within this wait ends the attempt without a request
    /// ([`crate::session::RefreshOutcome::LostRace`]), and when none comes (the holder failed,
    /// crashed or was closed) the refresh goes ahead. Zero never waits. The wait is part of the
    /// attempt, so at most half of `request_timeout` is spent on it (the request keeps the
    /// rest); at most 60 s. Defaults to 300 ms.
    pub lock_handoff_wait: Duration,
    /// Sign out after this long without user activity in any tab; `None` (the default) never.
    /// Refreshes and API calls are not activity: only [`crate::Session::handle_activity`] is.
    pub idle_timeout: Option<Duration>,
    /// How long before an idle logout [`crate::session::Event::IdleWarning`] fires. Must be less
    /// than `idle_timeout`. Defaults to 60 s.
    pub idle_warning: Duration,
    /// Local activity is shared with the other tabs at most this often (and then at the end of
    /// the interval, so the last activity always reaches them), at most a quarter of
    /// `idle_timeout`; activity that cancels a warning is shared at once. Defaults to 5 s.
    pub activity_share_interval: Duration,
    /// Longest lifetime believed for an *opaque* access token announced by another tab. Such a
    /// token has no `exp` or `iat` to bound what the announcement states, so this does instead;
    /// a genuine token that lives longer is adopted for this long, after which the tab
    /// refreshes for itself (a request, never a sign-out). Defaults to 1 hour.
    pub max_announced_opaque_lifetime: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            refresh_lead_min: Duration::from_secs(60),
            refresh_lead_fraction: 0.2,
            refresh_lead_max_fraction: 0.5,
            refresh_jitter_fraction: 0.25,
            leeway: Duration::from_secs(5),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(120),
            retry_after_cap: Duration::from_secs(600),
            refresh_budget: 12,
            refresh_budget_window: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            sibling_wait: Some(Duration::from_millis(100)),
            lock_timeout: None,
            lock_handoff_wait: Duration::from_millis(300),
            idle_timeout: None,
            idle_warning: Duration::from_secs(60),
            activity_share_interval: Duration::from_secs(5),
            max_announced_opaque_lifetime: Duration::from_secs(3600),
        }
    }
}

/// A [`Config`] value out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What it must be.
    pub expected: &'static str,
}

impl crate::message::Message for ConfigError {
    fn write_message(&self, out: &mut String) {
        out.push('`');
        out.push_str(self.field);
        out.push_str("` must be ");
        out.push_str(self.expected);
    }
}

crate::message::display_as_message!(ConfigError);

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every value is in range; [`crate::Session::new`] refuses a config that is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fraction = |field, v: f64, max: f64| {
            if v.is_finite() && (0.0..=max).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError {
                    field,
                    expected: "a number in the documented range",
                })
            }
        };
        fraction("refresh_lead_fraction", self.refresh_lead_fraction, 0.9)?;
        fraction(
            "refresh_lead_max_fraction",
            self.refresh_lead_max_fraction,
            0.9,
        )?;
        fraction("refresh_jitter_fraction", self.refresh_jitter_fraction, 1.0)?;
        let positive = |field, d: Duration| {
            if d.is_zero() {
                Err(ConfigError {
                    field,
                    expected: "greater than zero",
                })
            } else {
                Ok(())
            }
        };
        positive("retry_base", self.retry_base)?;
        positive("retry_cap", self.retry_cap)?;
        positive("refresh_budget_window", self.refresh_budget_window)?;
        positive("request_timeout", self.request_timeout)?;
        if self.retry_cap < self.retry_base {
            return Err(ConfigError {
                field: "retry_cap",
                expected: "at least retry_base",
            });
        }
        if self.lock_handoff_wait > Duration::from_secs(60) {
            return Err(ConfigError {
                field: "lock_handoff_wait",
                expected: "at most 60 s",
            });
        }
        if let Some(idle) = self.idle_timeout {
            positive("idle_timeout", idle)?;
            if self.idle_warning >= idle {
                return Err(ConfigError {
                    field: "idle_warning",
                    expected: "less than idle_timeout",
                });
            }
        }
        positive("activity_share_interval", self.activity_share_interval)?;
        positive(
            "max_announced_opaque_lifetime",
            self.max_announced_opaque_lifetime,
        )?;
        if self.refresh_budget == 0 {
            return Err(ConfigError {
                field: "refresh_budget",
                expected: "at least 1",
            });
        }
        Ok(())
    }
}

/// A small deterministic generator (SplitMix64) for jitter. Seeded by the caller, so the core
/// itself never draws randomness and tests replay exactly.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly random duration in `0..=max`, at millisecond resolution.
    pub fn duration_up_to(&mut self, max: Duration) -> Duration {
        let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        match max_ms.checked_add(1) {
            Some(range) => Duration::from_millis(self.next_u64() % range),
            None => Duration::from_millis(self.next_u64()),
        }
    }
}

/// The lifetime of a received token: `expires_in` from the response when given, else
/// `exp - iat` from its claims; the smaller of the two when both are known, so a server whose
/// two statements disagree gets the earlier refresh. `None` when neither is known or it is zero.
pub fn lifetime(expires_in: Option<Duration>, claims: &Claims) -> Option<Duration> {
    let from_claims = match (claims.exp, claims.iat) {
        (Some(exp), Some(iat)) if exp > iat => Some(Duration::from_secs(exp - iat)),
        (Some(_), Some(_)) => Some(Duration::ZERO),
        _ => None,
    };
    let lifetime = match (expires_in, from_claims) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    (!lifetime.is_zero()).then_some(lifetime)
}

/// Allowance for the whole-second resolution of `exp` and of the `Date` header the issuer's
/// clock is estimated from: [`announced_lifetime`] lets a token run at most this long past its
/// `exp`, well inside the default leeway.
pub const EXP_RESOLUTION: Duration = Duration::from_secs(2);

/// The lifetime another tab's token is adopted with, counted from `received_at` (when the
/// announcing tab received it, on this tab's clock, not after `now`): the announced `lifetime`,
/// but never longer than the token's own `exp - iat`, nor reaching past its `exp` on the
/// issuer's clock, estimated as `issuer_now` at `now` (within [`EXP_RESOLUTION`]). A genuine
/// announcement is within both bounds already; a forged or replayed one cannot stretch a
/// token's life. `None` when the token has no `exp`, as nothing then bounds what is announced.
pub fn announced_lifetime(
    received_at: Timestamp,
    lifetime: Duration,
    claims: &Claims,
    now: Timestamp,
    issuer_now: Timestamp,
) -> Option<Duration> {
    let exp = claims.exp?;
    let own = match claims.iat {
        Some(iat) => Duration::from_secs(exp.saturating_sub(iat)),
        None => lifetime,
    };
    let left = (Timestamp::from_secs(exp) + EXP_RESOLUTION).saturating_since(issuer_now);
    let until_exp = (now + left).saturating_since(received_at);
    Some(lifetime.min(own).min(until_exp))
}

/// The lifetime another tab's *opaque* token is adopted with, counted from `received_at` (as
/// for [`announced_lifetime`], never after now): the announced `lifetime`, at most
/// `max_announced_opaque_lifetime`. An opaque token states no `exp`, so this cap and the
/// announcement's receipt time are all that bound it: a forged announcement cannot make a
/// token live longer than the cap, a replayed one no longer than it did.
pub fn announced_opaque_lifetime(lifetime: Duration, config: &Config) -> Duration {
    lifetime.min(config.max_announced_opaque_lifetime)
}

/// `d × fraction` at millisecond resolution. The float-to-int cast saturates (NaN gives 0), so
/// unlike `Duration::mul_f64` this cannot panic. (The milliseconds go through `u64`, saturated:
/// a `u128` to `f64` conversion would link its own software routine into the wasm.)
fn scale(d: Duration, fraction: f64) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis((ms as f64 * fraction) as u64)
}

/// Seconds as a float (from JavaScript) to a duration, at millisecond resolution; negative,
/// NaN and huge values saturate instead of panicking as `Duration::from_secs_f64` would.
pub fn duration_from_secs(secs: f64) -> Duration {
    Duration::from_millis((secs * 1000.0) as u64)
}

/// How long before expiry the refresh starts, without jitter:
/// `min(max(refresh_lead_min, fraction × lifetime), max_fraction × lifetime)`.
pub fn refresh_lead(lifetime: Duration, config: &Config) -> Duration {
    config
        .refresh_lead_min
        .max(scale(lifetime, config.refresh_lead_fraction))
        .min(scale(lifetime, config.refresh_lead_max_fraction))
}

/// How long before expiry a token stops being offered: `leeway`, capped at a tenth of the lifetime.
pub fn leeway(lifetime: Duration, config: &Config) -> Duration {
    config.leeway.min(lifetime / 10)
}

/// When a token received at `received_at` with `lifetime` should be refreshed: the lead before
/// expiry plus a random extra of up to `refresh_jitter_fraction` of the lead.
pub fn refresh_at(
    received_at: Timestamp,
    lifetime: Duration,
    config: &Config,
    rng: &mut Rng,
) -> Timestamp {
    let lead = refresh_lead(lifetime, config);
    let jitter = rng.duration_up_to(scale(lead, config.refresh_jitter_fraction));
    received_at + lifetime - lead - jitter
}

/// When a tab that *adopted* a token from another tab refreshes it: just after the latest
/// moment the tab that fetched it can pick ([`refresh_at`] without jitter), plus a spread of
/// up to a tenth of the lead. The fetching tab therefore stays the one that refreshes, and the
/// others only step in when it is gone (closed, frozen, offline) — with most of the lead
/// still ahead. So extra tabs add no refresh requests, and no tab's jitter drags the shared
/// schedule earlier. Never later than the leeway allows (unless the lead is configured below
/// it, when it is the fetching tab's latest moment).
pub fn follower_refresh_at(
    received_at: Timestamp,
    lifetime: Duration,
    config: &Config,
    rng: &mut Rng,
) -> Timestamp {
    let expires_at = received_at + lifetime;
    let lead = refresh_lead(lifetime, config);
    let leader_latest = expires_at - lead;
    let spread = rng.duration_up_to(lead / 10);
    let latest = (expires_at - leeway(lifetime, config)).max(leader_latest);
    (leader_latest + spread).min(latest)
}

/// The wait before retry number `failures` (1 for the first failure): full jitter over an
/// exponentially growing ceiling, `0..=min(retry_cap, retry_base × 2^(failures-1))`.
pub fn backoff(failures: u32, config: &Config, rng: &mut Rng) -> Duration {
    rng.duration_up_to(backoff_ceiling(failures, config))
}

/// The ceiling [`backoff`] draws under.
pub fn backoff_ceiling(failures: u32, config: &Config) -> Duration {
    let doublings = failures.saturating_sub(1).min(32);
    config
        .retry_base
        .saturating_mul(1u32 << doublings.min(31))
        .min(config.retry_cap)
}

/// Remembers when recent refreshes started, to hold them to `refresh_budget` per window.
#[derive(Clone, Debug, Default)]
pub struct Budget {
    /// Oldest first, at most `refresh_budget` of them: a `Vec` (a `VecDeque`'s ring code is
    /// about 450 bytes of wasm for a list this short).
    starts: Vec<Timestamp>,
}

impl Budget {
    /// The earliest instant another refresh may start: `now` when the budget allows one.
    pub fn next_allowed(&self, now: Timestamp, config: &Config) -> Timestamp {
        if self.used(now, config) < config.refresh_budget as usize {
            return now;
        }
        // Full: the oldest counted start must leave the window first.
        let idx = self.starts.len() - config.refresh_budget as usize;
        (self.starts[idx] + config.refresh_budget_window).max(now)
    }

    /// Records a refresh start, forgetting starts older than the budget needs.
    pub fn record(&mut self, now: Timestamp, config: &Config) {
        self.starts.push(now);
        while self.starts.len() > config.refresh_budget as usize {
            self.starts.remove(0);
        }
    }

    /// Starts still counted at `now`.
    pub fn used(&self, now: Timestamp, config: &Config) -> usize {
        self.starts
            .iter()
            .filter(|t| now.saturating_since(**t) < config.refresh_budget_window)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_saturates_at_the_largest_durations_instead_of_wrapping() {
        assert_eq!(scale(Duration::MAX, 1.0), Duration::from_millis(u64::MAX));
        assert_eq!(scale(Duration::MAX, 0.0), Duration::ZERO);
        assert_eq!(scale(Duration::from_secs(90), 0.5), Duration::from_secs(45));
        assert_eq!(scale(Duration::from_secs(1), f64::NAN), Duration::ZERO);
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn default_lead_is_the_larger_of_a_minute_and_a_fifth() {
        let c = Config::default();
        assert_eq!(refresh_lead(secs(900), &c), secs(180));
        assert_eq!(refresh_lead(secs(240), &c), secs(60));
        // A 30 s token: 60 s would be the whole lifetime, so half of it.
        assert_eq!(refresh_lead(secs(30), &c), secs(15));
    }

    #[test]
    fn leeway_is_capped_for_short_tokens() {
        let c = Config::default();
        assert_eq!(leeway(secs(900), &c), secs(5));
        assert_eq!(leeway(secs(3), &c), Duration::from_millis(300));
    }

    #[test]
    fn lifetime_prefers_the_shorter_statement() {
        let claims = Claims {
            iat: Some(1000),
            exp: Some(1900),
            ..Claims::default()
        };
        assert_eq!(lifetime(Some(secs(300)), &claims), Some(secs(300)));
        assert_eq!(lifetime(Some(secs(3000)), &claims), Some(secs(900)));
        assert_eq!(lifetime(None, &claims), Some(secs(900)));
        assert_eq!(lifetime(None, &Claims::default()), None);
        assert_eq!(lifetime(Some(Duration::ZERO), &Claims::default()), None);
    }

    #[test]
    fn an_announced_lifetime_is_capped_by_exp_minus_iat_and_by_exp() {
        let now = Timestamp::from_secs(10_000);
        let claims = |iat: Option<u64>, exp: Option<u64>| Claims {
            iat,
            exp,
            ..Claims::default()
        };
        let fresh = claims(Some(10_000), Some(10_900));
        // A genuine announcement is left as it is.
        assert_eq!(
            announced_lifetime(now, secs(900), &fresh, now, now),
            Some(secs(900))
        );
        // 3,646 days for a 15-minute token: 15 minutes.
        assert_eq!(
            announced_lifetime(now, secs(3646 * 86_400), &fresh, now, now),
            Some(secs(900))
        );
        // Received long ago on this tab's clock: counted from then.
        let earlier = now - secs(100);
        assert_eq!(
            announced_lifetime(
                earlier,
                secs(900),
                &claims(Some(9_900), Some(10_800)),
                now,
                now
            ),
            Some(secs(900))
        );
        // An old token announced as just received: what is left of it on the issuer's clock.
        let old = claims(Some(9_200), Some(10_100));
        assert_eq!(
            announced_lifetime(now, secs(900), &old, now, now),
            Some(secs(100) + EXP_RESOLUTION)
        );
        // The issuer's clock, not this tab's, decides: a server three hours ahead.
        let ahead = Timestamp::from_secs(10_000 + 3 * 3600);
        let issued_ahead = claims(Some(10_000 + 3 * 3600), Some(10_900 + 3 * 3600));
        assert_eq!(
            announced_lifetime(now, secs(900), &issued_ahead, now, ahead),
            Some(secs(900))
        );
        // Expired on the issuer's clock: nothing left.
        assert_eq!(
            announced_lifetime(now, secs(900), &old, now, ahead),
            Some(Duration::ZERO)
        );
        // No `exp`: unbounded, so refused.
        assert_eq!(
            announced_lifetime(now, secs(900), &claims(Some(10_000), None), now, now),
            None
        );
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_the_cap() {
        let c = Config::default();
        let ceilings: Vec<u64> = (1..=10).map(|n| backoff_ceiling(n, &c).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 120, 120, 120]);
        assert_eq!(backoff_ceiling(u32::MAX, &c), secs(120));
    }

    #[test]
    fn budget_holds_starts_to_the_window() {
        let c = Config {
            refresh_budget: 3,
            ..Config::default()
        };
        let mut b = Budget::default();
        let t0 = Timestamp::from_secs(1000);
        for i in 0..3 {
            let now = t0 + secs(i);
            assert_eq!(b.next_allowed(now, &c), now);
            b.record(now, &c);
        }
        assert_eq!(b.next_allowed(t0 + secs(3), &c), t0 + secs(60));
        assert_eq!(b.next_allowed(t0 + secs(61), &c), t0 + secs(61));
    }

    #[test]
    fn default_config_is_valid_and_bad_values_are_named() {
        assert_eq!(Config::default().validate(), Ok(()));
        let bad = Config {
            refresh_budget: 0,
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "refresh_budget");
        let bad = Config {
            refresh_jitter_fraction: f64::NAN,
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "refresh_jitter_fraction");
    }
}
