//! The issuer's clock, estimated from the `Date` headers of its answers.
//!
//! A verified token's `exp`/`nbf`, and the lifetime of a token a sibling announces, are checked
//! against the issuer's time rather than a local clock that may be hours off. The driver feeds
//! every answer's `Date` with its wall clock and asks for the issuer's time when it needs it.

use crate::retry_after::parse_http_date;
use crate::Timestamp;

/// The server's clock minus the local wall clock, from the last `Date` header seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerClock {
    offset_ms: i64,
}

impl ServerClock {
    /// Notes the `Date` header of an answer received at local wall time `wall`. A missing or
    /// unparsable header keeps the previous estimate (at first: the local clock).
    pub fn observe(&mut self, date: Option<&str>, wall: Timestamp) {
        if let Some(secs) = date.and_then(parse_http_date) {
            self.offset_ms = (secs as i64).saturating_mul(1000) - wall.as_millis() as i64;
        }
    }

    /// The issuer's estimated time when the local wall clock says `wall` (never before the epoch).
    pub fn now(&self, wall: Timestamp) -> Timestamp {
        let ms = (wall.as_millis() as i64).saturating_add(self.offset_ms);
        Timestamp::from_millis(ms.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Tue, 03 Mar 2026 12:00:00 GMT";
    const DATE_SECS: u64 = 1_772_539_200;

    #[test]
    fn a_date_header_three_hours_ahead_moves_the_estimate_by_three_hours() {
        let wall = Timestamp::from_secs(DATE_SECS - 3 * 3600);
        let mut clock = ServerClock::default();
        clock.observe(Some(DATE), wall);
        assert_eq!(clock.now(wall), Timestamp::from_secs(DATE_SECS));
        // Later readings keep the offset.
        assert_eq!(
            clock.now(wall + std::time::Duration::from_secs(10)),
            Timestamp::from_secs(DATE_SECS + 10)
        );
    }

    #[test]
    fn without_a_usable_date_the_local_clock_or_the_last_estimate_is_kept() {
        let wall = Timestamp::from_secs(DATE_SECS + 60);
        let mut clock = ServerClock::default();
        clock.observe(None, wall);
        clock.observe(Some("yesterday"), wall);
        assert_eq!(clock.now(wall), wall);
        clock.observe(Some(DATE), wall);
        clock.observe(Some("not a date"), wall);
        assert_eq!(clock.now(wall), Timestamp::from_secs(DATE_SECS));
    }

    #[test]
    fn an_estimate_before_the_epoch_is_the_epoch() {
        let mut clock = ServerClock::default();
        clock.observe(
            Some("Thu, 01 Jan 1970 00:00:01 GMT"),
            Timestamp::from_secs(100),
        );
        assert_eq!(
            clock.now(Timestamp::from_secs(50)),
            Timestamp::from_millis(0)
        );
    }
}
