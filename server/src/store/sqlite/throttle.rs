//! The login throttle's counters: read, decided by the pure policy, written, in the
//! caller's transaction.

use rusqlite::{params, Connection, OptionalExtension};

use super::{to_i64, to_u64};
use crate::store::Result;
use crate::throttle::{Counter, Write};

/// Reads the counters of `keys`, lets `decide` choose the writes and applies them, in `tx`.
pub(super) fn apply(
    tx: &Connection,
    keys: [&str; 4],
    decide: &mut dyn FnMut([Option<Counter>; 4]) -> [Write; 4],
) -> Result<()> {
    let mut counters = [None; 4];
    for (counter, key) in counters.iter_mut().zip(keys) {
        *counter = tx
            .query_row(
                "SELECT failures, last_failure, expires_at FROM login_throttle WHERE key = ?1",
                [key],
                |r| {
                    Ok(Counter {
                        failures: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                        last_failure: to_u64(r.get(1)?),
                        expires_at: to_u64(r.get(2)?),
                    })
                },
            )
            .optional()?;
    }
    let writes = decide(counters);
    for (write, key) in writes.into_iter().zip(keys) {
        match write {
            Write::Keep => {}
            Write::Set(c) => {
                tx.execute(
                    "INSERT INTO login_throttle (key, failures, last_failure, expires_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(key) DO UPDATE SET failures = ?2, last_failure = ?3,
                                                    expires_at = ?4",
                    params![
                        key,
                        i64::from(c.failures),
                        to_i64(c.last_failure),
                        to_i64(c.expires_at)
                    ],
                )?;
            }
            Write::Delete => {
                tx.execute("DELETE FROM login_throttle WHERE key = ?1", [key])?;
            }
        }
    }
    Ok(())
}
