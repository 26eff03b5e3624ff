//! The HTTP surface: the router and the layers every request passes (access log, panics,
//! CORS). The handlers live beside it, one file per group: `auth` (login, refresh, logout),
//! `api` (`/api/me`, the JWKS), `test_switches` (merged only when the switches are on);
//! `counting` is the middleware that counts their answers.

mod api;
mod auth;
mod counting;
mod login_throttle;
mod test_switches;
mod upstream;

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::cors::cors;
use crate::error::ApiError;
use crate::logging::{self, Log};
use crate::state::AppState;
use crate::static_files;
use counting::{count_requests, Endpoint};

/// Marks a response the connection must not deliver: the server closes the connection
/// instead (the drop-next-refresh switch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AbortConnection;

/// Bytes of a request path the access log keeps.
const MAX_LOGGED_PATH: usize = 200;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let counted = |endpoint: Endpoint, route: MethodRouter<Arc<AppState>>| {
        route.route_layer(middleware::from_fn_with_state(
            (state.clone(), endpoint),
            count_requests,
        ))
    };
    let switches = if state.settings.test_switches {
        test_switches::router()
    } else {
        test_switches::disabled()
    };
    // Every answer of a DPoP endpoint carries the current nonce (with --dpop-nonce).
    let dpop = |route: MethodRouter<Arc<AppState>>| {
        route.route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::dpop::check::nonce_header,
        ))
    };
    // A panic in a handler answers 500 and is logged; it never ends the connection task,
    // let alone the process. The inner layer lets the access log record the 500, the outer
    // one covers the access log itself.
    // The upstream mode signs users in at the provider: no password login, and the
    // sign-in endpoints instead.
    let sign_in = if state.upstream.is_some() {
        Router::new()
            .route("/auth/login", any(not_found))
            .route("/auth/authorize", get(upstream::authorize))
            .route("/auth/callback", get(upstream::callback))
    } else {
        Router::new().route(
            "/auth/login",
            counted(Endpoint::Login, dpop(post(auth::login))),
        )
    };
    Router::new()
        .merge(sign_in)
        .route(
            "/auth/refresh",
            counted(Endpoint::Refresh, dpop(post(auth::refresh))),
        )
        .route(
            "/auth/logout",
            counted(Endpoint::Logout, post(auth::logout)),
        )
        .route("/.well-known/jwks.json", get(api::jwks))
        .route("/api/me", counted(Endpoint::Me, dpop(get(api::me))))
        .route("/pkg/{*path}", any(pkg_file))
        .merge(switches)
        .fallback(www_file)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .layer(CatchPanicLayer::custom(panic_response(state.log.clone())))
        .layer(middleware::from_fn(access_log))
        .layer(CatchPanicLayer::custom(panic_response(state.log.clone())))
        .with_state(state)
}

/// The answer to a request whose handler panicked: the usual JSON 500, and a log line.
/// The panic message is not logged: it may quote request data (the standard panic hook
/// still prints it to stderr with its location, as for any panic).
fn panic_response(log: Log) -> impl Fn(Box<dyn Any + Send>) -> Response + Clone {
    move |_payload| {
        log.scope(|| tracing::error!(what = "handler panicked", "error"));
        let mut response = ApiError::server_error().into_response();
        // The connection's state after a panic is unknown; do not reuse it.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// One line per request: method, path without the query, status, duration. Never headers.
///
/// Written out rather than tower-http's `TraceLayer`: that layer's default span records the
/// whole URI, query included, and `/auth/callback?code=…&state=…` carries the provider's
/// authorization code; this line has exactly the fields above (the path cut at
/// `MAX_LOGGED_PATH` on a character boundary, `dropped` when the connection is cut) and no span
/// for anything else to attach to.
async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // Cut on a character boundary: a byte offset inside a multibyte character would panic.
    let path = logging::cut(request.uri().path(), MAX_LOGGED_PATH).to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let dropped = response.extensions().get::<AbortConnection>().is_some();
    let status = response.status().as_u16();
    let ms = start.elapsed().as_millis() as u64;
    if dropped {
        tracing::info!(method = %method, path, status, dropped, ms, "request");
    } else {
        tracing::info!(method = %method, path, status, ms, "request");
    }
    response
}

pub(super) fn no_store(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

async fn pkg_file(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let path = path.strip_prefix("/pkg").unwrap_or("");
    static_files::serve(&state.settings.pkg, path, request).await
}

async fn www_file(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    static_files::serve(&state.settings.www, &path, request).await
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
