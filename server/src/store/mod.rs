//! Storage of refresh families, the `jti` denylist, login-throttling counters and signing keys.

mod sqlite;

pub use sqlite::*;
