//! One line per request or event, to stderr or to a sink the embedder provides.
//!
//! Callers pass only values that are safe to show: method, path without its query, status,
//! user names and session ids. Token, cookie, `Authorization` and password values are never
//! handed to the logger, and a test captures a full session's output to prove it.

use std::fmt;
use std::sync::Arc;

/// Receives each finished log line (without a trailing newline).
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// A sink that writes each line to stderr.
pub fn stderr_sink() -> LogSink {
    Arc::new(|line: &str| eprintln!("{line}"))
}

/// A sink that drops everything, for benchmarks.
pub fn null_sink() -> LogSink {
    Arc::new(|_: &str| {})
}

#[derive(Clone)]
pub(crate) struct Log {
    sink: LogSink,
}

impl Log {
    pub(crate) fn new(sink: LogSink) -> Self {
        Self { sink }
    }

    pub(crate) fn line(&self, args: fmt::Arguments<'_>) {
        (self.sink)(&args.to_string());
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Log")
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
///
/// Request data (paths, header values) is attacker-chosen UTF-8: cutting it at a fixed byte
/// offset with `String::truncate` or `&s[..n]` panics when the offset falls inside a
/// multibyte character, so every cut of such data goes through here.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cut_never_splits_a_character_whatever_its_width() {
        for c in ['a', '\u{e9}', '\u{20ac}', '\u{1f600}'] {
            for prefix in 0..8 {
                let s = format!("{}{c}{c}", "x".repeat(prefix));
                for max in 0..=s.len() + 1 {
                    let out = cut(&s, max);
                    assert!(out.len() <= max && s.starts_with(out), "{s:?} {max}");
                    // Nothing that fits was dropped: the next character would overflow.
                    let next = s[out.len()..].chars().next().map_or(0, char::len_utf8);
                    assert!(out.len() == s.len() || out.len() + next > max);
                }
            }
        }
    }
}
