//! The `Retry-After` header (RFC 9110 §10.2.3): a number of seconds or an HTTP date.
//!
//! A date is measured against the response's own `Date` header when there is one, so a client
//! clock hours off the server's still waits the time the server asked for.

use std::time::Duration;

use crate::time::Timestamp;

/// A parsed `Retry-After` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: 120`
    Delay(Duration),
    /// `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`, as seconds since the Unix epoch.
    Date(u64),
}

impl RetryAfter {
    /// Parses a header value; `None` when it is neither form (the header is then ignored).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Absurdly long digit strings saturate rather than fail: "wait very long".
            let secs = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(RetryAfter::Delay(Duration::from_secs(secs)));
        }
        parse_http_date(value).map(RetryAfter::Date)
    }

    /// How long to wait from now. `server_date` is the response's `Date` header, if any;
    /// without it the date is compared with the local clock `now`.
    pub fn delay(self, server_date: Option<&str>, now: Timestamp) -> Duration {
        match self {
            RetryAfter::Delay(d) => d,
            RetryAfter::Date(at) => {
                let reference = server_date
                    .and_then(parse_http_date)
                    .unwrap_or_else(|| now.as_secs());
                Duration::from_secs(at.saturating_sub(reference))
            }
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses an HTTP date in any of the three forms RFC 9110 §5.6.7 requires recipients to accept:
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
/// and asctime (`Sun Nov  6 08:49:37 1994`). Returns seconds since the Unix epoch.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let (day, month, year, time) = if let Some((_, rest)) = s.split_once(", ") {
        let fields: Vec<&str> = rest.split(' ').collect();
        match fields.as_slice() {
            // IMF-fixdate
            [d, m, y, t, "GMT"] if y.len() == 4 => (*d, *m, y.parse::<u64>().ok()?, *t),
            // RFC 850: two-digit year, interpreted in the 50-year window RFC 9110 asks for.
            [dmy, t, "GMT"] => {
                let mut it = dmy.split('-');
                let (d, m, y) = (it.next()?, it.next()?, it.next()?);
                if it.next().is_some() || y.len() != 2 {
                    return None;
                }
                let y: u64 = y.parse().ok()?;
                (d, m, if y < 70 { 2000 + y } else { 1900 + y }, *t)
            }
            _ => return None,
        }
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994" (day padded with a space)
        let fields: Vec<&str> = s.split(' ').filter(|f| !f.is_empty()).collect();
        match fields.as_slice() {
            [_, m, d, t, y] if y.len() == 4 => (*d, *m, y.parse::<u64>().ok()?, *t),
            _ => return None,
        }
    };
    let day: u64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let mut hms = time.split(':').map(|f| {
        if f.len() == 2 {
            f.parse::<u64>().ok()
        } else {
            None
        }
    });
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || mi > 59 || sec > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's algorithm), for years >= 1970.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_6_1994: u64 = 784_111_777;

    #[test]
    fn seconds_form() {
        assert_eq!(
            RetryAfter::parse("30"),
            Some(RetryAfter::Delay(Duration::from_secs(30)))
        );
        assert_eq!(
            RetryAfter::parse(" 0 "),
            Some(RetryAfter::Delay(Duration::ZERO))
        );
    }

    #[test]
    fn all_three_date_forms_agree() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(NOV_6_1994)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(NOV_6_1994)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(NOV_6_1994)
        );
    }

    #[test]
    fn leap_years_and_epoch() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
    }

    #[test]
    fn garbage_is_ignored_not_a_panic() {
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06-Nov-1994-01 08:49:37 GMT",
            "Sun, 06 Nov 0001 08:49:37 GMT",
            "Sun,06 Nov 1994 08:49:37 GMT",
            "é, 06 Nové 1994 08:49:37 GMT",
        ] {
            assert_eq!(RetryAfter::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn huge_delay_saturates() {
        assert!(matches!(
            RetryAfter::parse("99999999999999999999999999"),
            Some(RetryAfter::Delay(d)) if d == Duration::from_secs(u64::MAX)
        ));
    }

    #[test]
    fn date_is_measured_against_the_server_date_not_the_local_clock() {
        let ra = RetryAfter::parse("Sun, 06 Nov 1994 08:50:07 GMT").unwrap();
        // Local clock three hours fast: without the Date header the wait would be zero.
        let local = Timestamp::from_secs(NOV_6_1994 + 3 * 3600);
        assert_eq!(
            ra.delay(Some("Sun, 06 Nov 1994 08:49:37 GMT"), local),
            Duration::from_secs(30)
        );
        assert_eq!(ra.delay(None, local), Duration::ZERO);
        assert_eq!(
            ra.delay(None, Timestamp::from_secs(NOV_6_1994)),
            Duration::from_secs(30)
        );
    }
}
