//! The periodic work beside the accept loop: the maintenance pass (expired rows) and, on a
//! shared store, the reload of the signing keys another instance may have rotated.

use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;

/// How often an instance of a shared store reloads the signing keys.
pub(super) const KEY_SYNC_INTERVAL: Duration = Duration::from_secs(2);

pub(super) async fn key_sync_loop(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(KEY_SYNC_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let s = state.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.sync_keys()).await {
            state
                .log
                .scope(|| tracing::error!(what = "key sync", detail = e.to_string(), "error"));
        }
    }
}

pub(super) async fn maintenance_loop(state: Arc<AppState>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let s = state.clone();
        match tokio::task::spawn_blocking(move || s.maintenance()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => state
                .log
                .scope(|| tracing::error!(what = "maintenance", detail = e, "error")),
            Err(_) => state
                .log
                .scope(|| tracing::error!(what = "maintenance panicked", "error")),
        }
    }
}
