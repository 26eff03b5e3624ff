//! The login throttle around a password check: admitted before the hash, settled after
//! it, the pure policy (`crate::throttle`) applied to the stored counters atomically.

use std::sync::Arc;

use crate::error::ApiError;
use crate::state::AppState;
use crate::throttle::{Admission, Keys, Outcome, Write};

/// Applies the pure throttle policy to the stored counters of `keys`, atomically.
/// `Ok(Some(secs))`: refused for that long.
pub(super) async fn throttle_admit(
    state: &Arc<AppState>,
    keys: &Keys,
) -> Result<Option<u64>, ApiError> {
    let Some(policy) = state.settings.limits.throttle else {
        return Ok(None);
    };
    let keys = keys.clone();
    state
        .blocking(move |s| {
            let now = s.now();
            s.store
                .throttle(keys.all(), |counters| match policy.admit(counters, now) {
                    Admission::Allowed(writes) => (writes, None),
                    Admission::Wait(secs) => ([Write::Keep; 4], Some(secs)),
                })
                .map_err(|e| s.store_failed("login throttle", e))
        })
        .await
}

/// Settles a charged attempt (blocking; called on the pool). A failure to record it is
/// logged, never turned into a different answer.
pub(super) fn throttle_settle(state: &AppState, keys: &Keys, outcome: Outcome) {
    let Some(policy) = state.settings.limits.throttle else {
        return;
    };
    let now = state.now();
    if let Err(e) = state.store.throttle(keys.all(), |counters| {
        (policy.settle(counters, outcome, now), ())
    }) {
        let _ = state.internal("login throttle", e);
    }
}
