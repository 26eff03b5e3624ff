//! The `/test/*` routes, merged into the router only with `--test-switches`: failures,
//! delays and dropped answers injected into refreshes, key rotation on demand, the request
//! counters, and a handler that panics. Every one that changes something takes the checks
//! of refresh and logout: an allowed origin, the CSRF header, JSON only.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{no_store, not_found};
use crate::error::ApiError;
use crate::extract::{CsrfChecked, JsonBody, OptionalJsonBody};
use crate::state::AppState;
use crate::switches::{Delay, FailRefresh, SwitchState};

/// Upper bound of the delay switch, so a typo cannot hang a test run.
const MAX_DELAY_MS: u64 = 60_000;

/// The switch routes; any other `/test/*` path answers 404.
pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/test/fail-refresh", post(fail_refresh))
        .route("/test/delay", post(delay))
        .route("/test/drop-next-refresh", post(drop_next_refresh))
        .route("/test/rotate-keys", post(rotate_keys))
        .route("/test/stats", get(stats))
        .route("/test/reset", post(reset))
        .route("/test/panic", post(panic))
        .route("/test/{*rest}", any(not_found))
}

/// Without the switches: explicit 404s, so a `www/test/` directory can never answer.
pub(super) fn disabled() -> Router<Arc<AppState>> {
    Router::new()
        .route("/test", any(not_found))
        .route("/test/{*rest}", any(not_found))
}

async fn fail_refresh(
    State(state): State<Arc<AppState>>,
    _: CsrfChecked,
    JsonBody(fail): JsonBody<FailRefresh>,
) -> Result<Json<SwitchState>, ApiError> {
    if !matches!(fail.status, 429 | 500 | 502 | 503 | 504) {
        return Err(ApiError::invalid_request(
            "status must be 429, 500, 502, 503 or 504",
        ));
    }
    Ok(Json(state.switches.set_fail(fail)))
}

async fn delay(
    State(state): State<Arc<AppState>>,
    _: CsrfChecked,
    JsonBody(delay): JsonBody<Delay>,
) -> Json<SwitchState> {
    Json(state.switches.set_delay(delay.ms.min(MAX_DELAY_MS)))
}

async fn drop_next_refresh(
    State(state): State<Arc<AppState>>,
    _: CsrfChecked,
    _: OptionalJsonBody,
) -> Json<SwitchState> {
    Json(state.switches.set_drop_next())
}

async fn rotate_keys(
    State(state): State<Arc<AppState>>,
    _: CsrfChecked,
    _: OptionalJsonBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kid = state
        .blocking(|s| s.rotate_keys().map_err(|e| s.internal("rotate keys", e)))
        .await?;
    Ok(Json(json!({ "kid": kid })))
}

async fn stats(State(state): State<Arc<AppState>>) -> Response {
    let mut response = Json(state.counters.snapshot()).into_response();
    no_store(&mut response);
    response
}

async fn reset(
    State(state): State<Arc<AppState>>,
    _: CsrfChecked,
    _: OptionalJsonBody,
) -> Json<SwitchState> {
    state.counters.reset();
    Json(state.switches.reset())
}

/// Panics on purpose, so a test can prove that a bug in one handler answers 500 and the
/// server keeps serving.
async fn panic(_: CsrfChecked, _: OptionalJsonBody) -> Response {
    panic!("test switch: /test/panic");
}
