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
        let value = value.trim_ascii();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Absurdly long digit strings saturate rather than fail: "wait very long".
            let secs = crate::json::saturating_digits(value.as_bytes()) as u64;
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

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn month(token: &[u8]) -> Option<u64> {
    MONTHS
        .iter()
        .position(|m| *m == token)
        .map(|i| i as u64 + 1)
}

/// A field of 1 to 4 ASCII digits.
fn number(token: &[u8]) -> Option<u64> {
    if token.is_empty() || token.len() > 4 || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(crate::json::saturating_digits(token) as u64)
}

/// Parses an HTTP date in any of the three forms RFC 9110 §5.6.7 requires recipients to accept:
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
/// and asctime (`Sun Nov  6 08:49:37 1994`). Returns seconds since the Unix epoch.
///
/// Works on the fields between separators (space, comma, dash, colon), which is all the three
/// forms differ in; the weekday is not checked.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let mut fields = [&[][..]; 8];
    let mut n = 0;
    for field in s
        .as_bytes()
        .split(|b| matches!(b, b' ' | b',' | b'-' | b':'))
    {
        if field.is_empty() {
            continue;
        }
        *fields.get_mut(n)? = field;
        n += 1;
    }
    let (day, mon, year, time) = match (n, month(fields[1])) {
        // asctime: weekday month day hh mm ss year
        (7, Some(m)) => (
            fields[2],
            m,
            number(fields[6]).filter(|_| fields[6].len() == 4)?,
            &fields[3..6],
        ),
        // IMF-fixdate and RFC 850: weekday day month year hh mm ss GMT
        (8, None) if fields[7] == b"GMT" => {
            let year = match (fields[3].len(), number(fields[3])?) {
                (4, y) => y,
                // RFC 850's two-digit year, in the 50-year window RFC 9110 asks for.
                (2, y) if y < 70 => 2000 + y,
                (2, y) => 1900 + y,
                _ => return None,
            };
            (fields[1], month(fields[2])?, year, &fields[4..7])
        }
        _ => return None,
    };
    let day = number(day).filter(|d| (1..=31).contains(d))?;
    let two = |f: &[u8]| number(f).filter(|_| f.len() == 2);
    let (h, mi, sec) = (two(time[0])?, two(time[1])?, two(time[2])?);
    if h > 23 || mi > 59 || sec > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    Some(days_from_civil(year, mon, day) * 86_400 + h * 3600 + mi * 60 + sec)
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

    /// The whitespace around the value is HTTP's optional whitespace (RFC 9110 §5.6.3: spaces
    /// and tabs), trimmed as ASCII: a non-ASCII space is part of the value, which is then not
    /// a number. (`trim_ascii`, not Unicode `trim`: README "Size", sixth pass.)
    #[test]
    fn only_ascii_whitespace_around_the_value_is_trimmed() {
        assert_eq!(
            RetryAfter::parse("\t120 "),
            Some(RetryAfter::Delay(Duration::from_secs(120)))
        );
        assert_eq!(
            RetryAfter::parse(" Sun, 06 Nov 1994 08:49:37 GMT\t"),
            Some(RetryAfter::Date(NOV_6_1994))
        );
        assert_eq!(RetryAfter::parse("120\u{a0}"), None);
        assert_eq!(RetryAfter::parse("\u{2003}120"), None);
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
            "é, 06 Nové 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06 Nov 94 8:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
        ] {
            assert_eq!(RetryAfter::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn huge_delay_saturates() {
        assert!(matches!(
            RetryAfter::parse("99999999999999999999999999"),
            Some(RetryAfter::Delay(d)) if d > Duration::from_secs(1 << 55)
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
