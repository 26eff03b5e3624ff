//! Time as the core sees it: instants handed in by the caller, never read from a clock.
//!
//! The browser layer passes `Date.now()`; tests pass a virtual clock. Keeping the type opaque
//! (milliseconds since the Unix epoch) lets the session compare, add and clamp without ever
//! touching `std::time::SystemTime`, which does not exist in the browser.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// The longest delay a browser timer can be armed with, with margin: `setTimeout` treats
/// 2^31 ms or more as 0 and fires at once (gloo-timers issue 121). Every deadline the core
/// reports is at most this far ahead of the last input; a longer wait is re-armed in steps.
pub const MAX_TIMER_DELAY: Duration = Duration::from_millis(24 * 24 * 60 * 60 * 1000);

/// A point in time, in milliseconds since the Unix epoch, as read by the caller's clock.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The instant `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// The instant `secs` seconds after the Unix epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturating: a lifetime of years added to a far-future instant stays representable.
    fn add(self, rhs: Duration) -> Timestamp {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturating at the epoch.
    fn sub(self, rhs: Duration) -> Timestamp {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({}ms)", self.0)
    }
}

/// The delay to arm a timer with so that it fires at `deadline`, seen from `now`:
/// zero when the deadline has passed, never more than [`MAX_TIMER_DELAY`].
///
/// A driver calls this with its own clock right before arming, so a deadline computed a
/// moment ago is not stretched by the time spent in between.
pub fn timer_delay(deadline: Timestamp, now: Timestamp) -> Duration {
    deadline.saturating_since(now).min(MAX_TIMER_DELAY)
}

/// A clock for the session built from the browser's two clocks, so neither of their failures
/// reaches the timing policy:
///
/// - the wall clock (`Date.now()`) keeps counting while the machine sleeps, but the user or
///   NTP can set it back or forward;
/// - the monotonic clock (`performance.now()`) never goes back, but on some platforms it
///   stops while the machine sleeps.
///
/// Each reading advances by the larger of the two clocks' progress since the previous reading
/// (never by less than zero): sleep is counted by the wall clock, a wall clock set back is
/// overruled by the monotonic one. A wall clock set forward counts as elapsed time, which only
/// makes the session refresh early.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    last: Option<(u64, u64, Timestamp)>,
}

impl Clock {
    /// A clock whose first reading is the wall time it is given.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current time from a wall reading and a monotonic reading, both in milliseconds.
    pub fn now(&mut self, wall_ms: u64, monotonic_ms: u64) -> Timestamp {
        let now = match self.last {
            None => Timestamp(wall_ms),
            Some((wall, mono, out)) => {
                let step = wall_ms
                    .saturating_sub(wall)
                    .max(monotonic_ms.saturating_sub(mono));
                Timestamp(out.0.saturating_add(step))
            }
        };
        self.last = Some((wall_ms, monotonic_ms, now));
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_counts_sleep_by_the_wall_clock() {
        let mut c = Clock::new();
        let t0 = c.now(1_000_000, 500);
        // Two hours asleep: the monotonic clock stood still.
        assert_eq!(
            c.now(1_000_000 + 7_200_000, 600),
            t0 + Duration::from_secs(7200)
        );
    }

    #[test]
    fn clock_ignores_a_wall_clock_set_back() {
        let mut c = Clock::new();
        let t0 = c.now(10_000_000, 0);
        // Five minutes later the wall clock is set back an hour.
        let t1 = c.now(10_000_000 + 300_000 - 3_600_000, 300_000);
        assert_eq!(t1, t0 + Duration::from_secs(300));
        assert_eq!(
            c.now(10_000_000 + 310_000 - 3_600_000, 310_000),
            t0 + Duration::from_secs(310)
        );
    }

    #[test]
    fn clock_never_runs_backwards() {
        let mut c = Clock::new();
        let t0 = c.now(5_000, 5_000);
        assert_eq!(c.now(1_000, 1_000), t0);
    }

    #[test]
    fn timer_delay_is_clamped_below_the_set_timeout_overflow() {
        let now = Timestamp::from_secs(1_700_000_000);
        let far = now + Duration::from_secs(60 * 24 * 60 * 60);
        let delay = timer_delay(far, now);
        assert!(delay.as_millis() < (1u128 << 31) - 1);
        assert_eq!(delay, MAX_TIMER_DELAY);
    }

    #[test]
    fn timer_delay_is_zero_for_a_past_deadline() {
        let now = Timestamp::from_secs(100);
        assert_eq!(timer_delay(Timestamp::from_secs(50), now), Duration::ZERO);
    }

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        assert_eq!(
            Timestamp::from_millis(u64::MAX - 1) + Duration::from_secs(10),
            Timestamp::from_millis(u64::MAX)
        );
        assert_eq!(
            Timestamp::from_millis(5) - Duration::from_secs(10),
            Timestamp::from_millis(0)
        );
    }
}
