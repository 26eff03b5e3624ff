//! The login throttle's counters: read, decided by the pure policy, applied by a
//! compare-and-set script on the counters' slot.

use super::*;
use crate::store::{Result, StoreError};
use crate::throttle::{Counter, Write};

impl RedisStore {
    /// Reads the counters of `keys`, lets `decide` choose the writes, and applies them
    /// unless a counter changed meanwhile (then it reads and decides again).
    pub(super) fn throttle_cas(
        &self,
        keys: [&str; 4],
        decide: &mut dyn FnMut([Option<Counter>; 4]) -> [Write; 4],
    ) -> Result<()> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| throttle_key(k)).collect();
        for _ in 0..MAX_ATTEMPTS {
            let read = keys.clone();
            let values: Vec<Option<Vec<u8>>> = self.run(move |mut c| async move {
                let mut cmd = redis::cmd("MGET");
                for k in &read {
                    cmd.arg(k.as_slice());
                }
                cmd.query_async(&mut c).await
            })?;
            let mut counters = [None; 4];
            for (counter, v) in counters.iter_mut().zip(&values) {
                *counter = v.as_deref().and_then(decode_counter);
            }
            let writes = decide(counters);
            let now_hint = counters
                .iter()
                .flatten()
                .map(|c| c.last_failure)
                .max()
                .unwrap_or(0);
            let mut args: Vec<Vec<u8>> = values
                .iter()
                .map(|v| v.clone().unwrap_or_default())
                .collect();
            for write in writes {
                match write {
                    Write::Keep => args.extend([b"k".to_vec(), Vec::new(), Vec::new()]),
                    Write::Delete => args.extend([b"d".to_vec(), Vec::new(), Vec::new()]),
                    Write::Set(c) => {
                        // Its lifetime relative to its own latest charge, which is "now"
                        // for the policy that just wrote it.
                        let from = c.last_failure.max(now_hint);
                        args.extend([
                            b"s".to_vec(),
                            encode_counter(&c).into_bytes(),
                            ttl(c.expires_at, from).to_string().into_bytes(),
                        ]);
                    }
                }
            }
            let applied: i64 = self.script(&self.scripts.throttle, keys.clone(), args)?;
            if applied == 1 {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(
            "too many concurrent logins for one account".into(),
        ))
    }
}
