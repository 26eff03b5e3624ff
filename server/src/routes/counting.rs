//! The per-endpoint middleware of the auth and API routes: the request counters that
//! `/test/stats` reports, and the `event=client_gone` line when a client leaves mid-request.
//! Handlers only answer; what an answer counts as is decided here, in one place.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AbortConnection;
use crate::state::AppState;
use crate::switches::Counters;

/// The endpoints whose answers are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Login,
    Refresh,
    Logout,
    Me,
}

impl Endpoint {
    /// The path named by `event=client_gone`; `/api/me` does no work worth reporting.
    fn watched_path(self) -> Option<&'static str> {
        match self {
            Self::Login => Some("/auth/login"),
            Self::Refresh => Some("/auth/refresh"),
            Self::Logout => Some("/auth/logout"),
            Self::Me => None,
        }
    }

    /// Bumps the counters of one finished answer. An answer succeeds when it is a 2xx the
    /// client will receive: a refresh answer the drop switch withholds counts as failed.
    fn count(self, counters: &Counters, response: &Response) {
        let delivered = response.extensions().get::<AbortConnection>().is_none();
        let ok = response.status().is_success() && delivered;
        let counter = match (self, ok) {
            (Self::Login, true) => &counters.login,
            (Self::Login, false) => &counters.login_failed,
            (Self::Refresh, true) => &counters.refresh_ok,
            (Self::Refresh, false) => &counters.refresh_failed,
            (Self::Logout, true) => &counters.logout,
            (Self::Me, true) => &counters.api_me,
            (Self::Logout | Self::Me, false) => return,
        };
        Counters::bump(counter);
    }
}

/// Counts the request and its answer (installed with `route_layer`, so a 405 from the
/// method router is not counted), and reports a client that left before the answer.
pub(super) async fn count_requests(
    State((state, endpoint)): State<(Arc<AppState>, Endpoint)>,
    request: Request,
    next: Next,
) -> Response {
    if endpoint == Endpoint::Refresh {
        Counters::bump(&state.counters.refresh_requests);
    }
    let gone = endpoint
        .watched_path()
        .map(|path| ClientGone::watch(&state, path));
    let response = next.run(request).await;
    if let Some(gone) = gone {
        gone.finished();
    }
    endpoint.count(&state.counters, &response);
    response
}

/// Logs `event=client_gone` if the request future is dropped before it finished: hyper
/// drops it when the client closes the connection mid-request. Work already handed to
/// the blocking pool (a hash, a committed rotation) still runs to its end.
struct ClientGone<'a> {
    state: &'a AppState,
    path: &'static str,
    start: Instant,
    done: bool,
}

impl<'a> ClientGone<'a> {
    fn watch(state: &'a AppState, path: &'static str) -> Self {
        Self {
            state,
            path,
            start: Instant::now(),
            done: false,
        }
    }

    fn finished(mut self) {
        self.done = true;
    }
}

impl Drop for ClientGone<'_> {
    fn drop(&mut self) {
        if !self.done {
            let ms = self.start.elapsed().as_millis() as u64;
            // Dropped outside any poll of the connection task: name the subscriber.
            self.state
                .log
                .scope(|| tracing::warn!(path = self.path, ms, "client_gone"));
        }
    }
}
