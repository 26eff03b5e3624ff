//! The accept loop and the serving of one connection.
//!
//! The loop is hyper's, not `axum::serve`: the drop-next-refresh switch must close a
//! connection without writing any response (a hyper service that returns an error does
//! exactly that, so responses marked [`AbortConnection`] become errors here), and every
//! connection runs under the limits of [`crate::connections`]: the cap at accept, the body
//! deadline on each request, the idle timer and eviction beside the connection.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::instrument::WithSubscriber;

use crate::connections::{Admission, ConnectionLimits, Connections};
use crate::routes::AbortConnection;
use crate::state::AppState;

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response dropped by test switch")
    }
}

impl std::error::Error for Dropped {}

/// Accepts connections until `shutdown` completes. Each one is admitted under the cap of
/// `connections` and served in a task of its own, which finishes the request in flight and
/// closes once `stop_signal` turns true.
pub(super) async fn accept_until<F>(
    listener: &TcpListener,
    state: &Arc<AppState>,
    router: &Router,
    connections: &Arc<Connections>,
    limits: ConnectionLimits,
    stop_signal: tokio::sync::watch::Receiver<bool>,
    shutdown: F,
) where
    F: Future<Output = ()> + Send,
{
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Running out of file descriptors is transient; back off, don't exit.
                    state.log.scope(|| tracing::error!(detail = e.to_string(), "accept_error"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = match connections.admit() {
            Admission::Admitted { conn, evicted } => {
                if evicted {
                    state.log.scope(|| {
                        tracing::warn!(
                            reason = "connection cap",
                            open = connections.open(),
                            "connection_evicted"
                        );
                    });
                }
                Arc::new(conn)
            }
            Admission::Full => {
                // Every connection is busy in a handler: answer at once and close, so
                // the client backs off instead of waiting on a socket nobody reads.
                let _ = stream.try_write(REFUSED);
                state.log.scope(|| {
                    tracing::warn!(
                        reason = "connection cap",
                        open = connections.open(),
                        "connection_refused"
                    );
                });
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service_conn = conn.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut router = router.clone();
            let in_flight = service_conn.request();
            let (parts, body) = request.into_parts();
            let body = service_conn.deadline_body(body);
            let body_timed_out = body.timed_out_flag();
            let mut request = hyper::Request::from_parts(parts, axum::body::Body::new(body));
            request.extensions_mut().insert(ConnectInfo(peer));
            async move {
                let _in_flight = in_flight;
                let mut response = match tower_service::Service::call(&mut router, request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                if response.extensions().get::<AbortConnection>().is_some() {
                    return Err(Dropped);
                }
                if body_timed_out.load(Ordering::Acquire) {
                    // The rest of the body may still be on its way: do not read it as
                    // the next request.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Dropped>(response)
            }
        });
        let io = TokioIo::new(conn.track(stream));
        let mut stop_signal = stop_signal.clone();
        tokio::spawn(
            async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    // Slow-loris guard: a client gets this long to send its headers, and a
                    // keep-alive connection as long to start its next request.
                    .header_read_timeout(limits.header_timeout.max(Duration::from_millis(1)))
                    .serve_connection(io, service);
                let mut connection = std::pin::pin!(connection);
                let mut stopping = false;
                loop {
                    tokio::select! {
                        _ = connection.as_mut() => break,
                        // Closed without an answer: a slow client made room for a new one.
                        () = conn.evicted() => break,
                        () = conn.idle(), if !stopping => break,
                        _ = stop_signal.wait_for(|stop| *stop), if !stopping => {
                            // Finishes the request in flight, if any, then closes.
                            connection.as_mut().graceful_shutdown();
                            stopping = true;
                        }
                    }
                }
            }
            // This server's subscriber for every event of its requests.
            .with_subscriber(state.log.dispatch()),
        );
    }
}

/// The answer to a connection over the cap when no open one can be evicted.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
cache-control: no-store\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 114\r\n\
\r\n\
{\"error\":\"temporarily_unavailable\",\"error_description\":\"the server is at its connection limit; try again shortly\"}";

// Keeps the type checker honest that the router never fails.
const _: fn() = || {
    fn infallible<S: tower_service::Service<hyper::Request<Incoming>, Error = Infallible>>() {}
    infallible::<Router>();
};
