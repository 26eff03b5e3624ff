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
