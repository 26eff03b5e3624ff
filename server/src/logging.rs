//! Structured log events with `tracing`, written one line each to a [`LogSink`].
//!
//! Every server has its own subscriber (a `tracing-subscriber` registry with [`SinkLayer`]),
//! made the default in its connection tasks, its blocking jobs and its maintenance, so two
//! servers in one process (tests, embedders) never mix their logs. An event's message is
//! its `event=` name and its fields follow as `key=value`: the lines stay greppable.
//!
//! Callers pass only values that are safe to show: method, path without its query, status,
//! user names and session ids. Token, cookie, `Authorization` and password values are never
//! handed to the logger, and a test captures a full session's output to prove it.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::Registry;
use tracing_subscriber::Layer;

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

/// One server's subscriber.
#[derive(Clone)]
pub(crate) struct Log {
    dispatch: Dispatch,
}

impl Log {
    pub(crate) fn new(sink: LogSink) -> Self {
        Self {
            dispatch: Dispatch::new(Registry::default().with(SinkLayer { sink })),
        }
    }

    /// Runs `f` with this server's subscriber as the default, for code that runs outside
    /// its tasks (start-up, a drop, an embedder's call).
    pub(crate) fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::dispatcher::with_default(&self.dispatch, f)
    }

    /// The subscriber, for `WithSubscriber::with_subscriber` on a spawned task.
    pub(crate) fn dispatch(&self) -> Dispatch {
        self.dispatch.clone()
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Log")
    }
}

/// Formats this crate's events as `event=MESSAGE key=value …` and hands the line to the
/// sink. Events of other crates are not enabled. Strings are quoted (`user="demo"`);
/// `%`-fields print as they display (`sid=abc`), numbers and booleans bare.
pub(crate) struct SinkLayer {
    sink: LogSink,
}

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target().starts_with(env!("CARGO_CRATE_NAME"))
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut line = Line::default();
        event.record(&mut line);
        (self.sink)(&format!("event={}{}", line.message, line.fields));
    }
}

#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
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
    use super::*;
    use std::sync::Mutex;

    fn captured() -> (Log, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let log = Log::new(Arc::new(move |l: &str| {
            sink.lock().unwrap().push(l.to_owned())
        }));
        (log, lines)
    }

    #[test]
    fn an_event_becomes_one_greppable_line_with_quoted_strings() {
        let (log, lines) = captured();
        log.scope(|| {
            tracing::info!(
                peer = %"127.0.0.1",
                user = "de\"mo",
                revoked = 2u64,
                denied = true,
                "login"
            );
        });
        assert_eq!(
            *lines.lock().unwrap(),
            ["event=login peer=127.0.0.1 user=\"de\\\"mo\" revoked=2 denied=true"]
        );
    }

    #[test]
    fn two_servers_in_one_process_keep_their_lines_apart() {
        let (a, a_lines) = captured();
        let (b, b_lines) = captured();
        a.scope(|| tracing::info!("one"));
        b.scope(|| tracing::info!("two"));
        // Outside any server's scope an event goes nowhere.
        tracing::info!("three");
        assert_eq!(*a_lines.lock().unwrap(), ["event=one"]);
        assert_eq!(*b_lines.lock().unwrap(), ["event=two"]);
    }

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
