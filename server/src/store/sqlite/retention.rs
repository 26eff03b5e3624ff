//! Data retention: what the maintenance run deletes, in the caller's transaction.

use rusqlite::Connection;

use super::to_i64;
use crate::store::{CleanupReport, Result};

/// Deletes every row that can no longer matter at `now`; the report and the `kid`s of the
/// signing keys it deleted.
pub(super) fn cleanup(tx: &Connection, now: u64) -> Result<(CleanupReport, Vec<String>)> {
    let now = to_i64(now);
    let refresh_tokens = tx.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?1", [now])?;
    // A family must outlive its access tokens: /api/me refuses a token whose sid is
    // unknown, and a revoked family must keep refusing until they have expired.
    let families = tx.execute(
        "DELETE FROM families WHERE access_exp_max <= ?1
         AND (revoked_at IS NOT NULL OR expires_at <= ?1)",
        [now],
    )?;
    let denied_jtis = tx.execute("DELETE FROM denied_jti WHERE expires_at <= ?1", [now])?;
    let purged: Vec<String> = {
        let mut stmt = tx.prepare(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND last_exp <= ?1
             RETURNING kid",
        )?;
        let rows = stmt.query_map([now], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let login_throttles = tx.execute("DELETE FROM login_throttle WHERE expires_at <= ?1", [now])?;
    let dpop_proofs = tx.execute("DELETE FROM dpop_proofs WHERE expires_at <= ?1", [now])?;
    let report = CleanupReport {
        families,
        refresh_tokens,
        denied_jtis,
        signing_keys: purged.len(),
        login_throttles,
        dpop_proofs,
    };
    Ok((report, purged))
}
