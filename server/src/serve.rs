//! Startup and the accept loop.
//!
//! The loop is hyper's, not `axum::serve`: the drop-next-refresh switch must close a
//! connection without writing any response (a hyper service that returns an error does
//! exactly that, so responses marked [`AbortConnection`] become errors here), and every
//! connection runs under the limits of [`crate::connections`]: the cap at accept, the body
//! deadline on each request, the idle timer and eviction beside the connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::access::Expectations;
use crate::config::{normalize_origin, Config};
use crate::connections::{Admission, ConnectionLimits, Connections};
use crate::keys::{KeyRing, SigningKey};
use crate::logging::Log;
use crate::password::Passwords;
use crate::routes::{router, AbortConnection};
use crate::state::{AppHandle, AppState, DpopSettings, Limits, Settings};
use crate::store::{RedisStore, SqliteStore, Store, StoreSpec, KEK_ENV};
use crate::switches::{Counters, Switches};
use tracing::instrument::WithSubscriber;

/// Why the server could not start.
#[derive(Debug)]
pub struct StartError(String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// A bound, ready server. Requests are answered once [`Server::run`] or
/// [`Server::run_until`] is polled.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    router: Router,
    maintenance_interval: Duration,
    limits: ConnectionLimits,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response dropped by test switch")
    }
}

impl std::error::Error for Dropped {}

impl Server {
    /// Binds `config.listen`, opens the database, seeds the demo users and loads (or
    /// creates) the signing key.
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.listen)))?;
        Self::from_listener(listener, config).await
    }

    /// Like [`Server::bind`] with a listener the caller already bound; `config.listen`
    /// is ignored.
    pub async fn from_listener(
        listener: TcpListener,
        config: Config,
    ) -> Result<Server, StartError> {
        let addr = listener
            .local_addr()
            .map_err(|e| StartError(format!("cannot read the bound address: {e}")))?;
        let port = addr.port();
        let allowed_origins = if config.allowed_origins.is_empty() {
            vec![
                format!("http://localhost:{port}"),
                format!("http://127.0.0.1:{port}"),
            ]
        } else {
            config
                .allowed_origins
                .iter()
                .map(|o| normalize_origin(o))
                .collect::<Result<_, _>>()
                .map_err(StartError)?
        };
        let settings = Settings {
            expect: Expectations {
                issuer: config
                    .issuer
                    .clone()
                    .unwrap_or_else(|| format!("http://localhost:{port}")),
                audience: config.audience.clone(),
            },
            access_ttl: config.access_ttl.max(1),
            allowed_origins,
            algorithm: config.algorithm,
            key_rotation: config.key_rotation.filter(|p| *p > 0),
            www: config.www.clone(),
            pkg: config.pkg.clone(),
            test_switches: config.test_switches,
            limits: Limits::from_config(&config),
            dpop: DpopSettings {
                iat_window: config.dpop_iat_window.max(1),
                required: config.dpop_required,
                public_scheme: config.public_scheme.clone(),
            },
        };
        let maintenance_interval = Duration::from_secs(config.maintenance_interval.max(1));
        let mut limits = config.connection_limits;
        let lowered = limits.cap_for_fd_limit();
        if let Some(cap) = lowered {
            limits.max_connections = cap;
        }
        let log = Log::new(config.log.clone());
        // The upstream mode (issue 19): discovery before anything else starts, so an
        // unreachable provider is a start error that names it.
        let upstream = match &config.upstream {
            Some(c) => Some(crate::upstream::discover(c).await.map_err(StartError)?),
            None => None,
        };
        let configured_kek = config.key_encryption_key.clone();
        let mut state = tokio::task::spawn_blocking(move || {
            log.clone().scope(|| build_state(config, settings, log))
        })
        .await
        .map_err(|_| StartError("startup panicked".into()))??;
        if let Some(discovered) = upstream {
            state.upstream = Some(Arc::new(crate::upstream::Upstream::new(
                discovered,
                upstream_kek(&state, configured_kek)?,
            )));
        }
        let state = Arc::new(state);
        if let Some(cap) = lowered {
            state.log.scope(|| {
                tracing::warn!(
                    max_connections = cap,
                    reason = "below the file descriptor limit",
                    "limits"
                );
            });
        }
        Ok(Server {
            listener,
            addr,
            router: router(state.clone()),
            state,
            maintenance_interval,
            limits,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, what the binary prints when it is ready.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A handle for maintenance, key rotation and inspection.
    pub fn handle(&self) -> AppHandle {
        AppHandle(self.state.clone())
    }

    /// Serves until the process ends.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then stops accepting, lets open requests finish
    /// (at most 5 s) and returns.
    pub async fn run_until<F>(self, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send,
    {
        let Server {
            listener,
            state,
            router,
            maintenance_interval,
            limits,
            ..
        } = self;
        let maintenance = tokio::spawn(
            maintenance_loop(state.clone(), maintenance_interval)
                .with_subscriber(state.log.dispatch()),
        );
        // On a shared store another instance may rotate the key: every instance picks it
        // up within KEY_SYNC_INTERVAL, so all JWKS agree within seconds.
        let key_sync = state.store.shared().then(|| {
            tokio::spawn(key_sync_loop(state.clone()).with_subscriber(state.log.dispatch()))
        });
        let connections = Connections::new(limits);
        let (stopping, stop_signal) = tokio::sync::watch::channel(false);
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
                    let mut response =
                        match tower_service::Service::call(&mut router, request).await {
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
        drop(listener);
        maintenance.abort();
        if let Some(key_sync) = key_sync {
            key_sync.abort();
        }
        let _ = stopping.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), connections.all_closed()).await;
        Ok(())
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

/// How often an instance of a shared store reloads the signing keys.
const KEY_SYNC_INTERVAL: Duration = Duration::from_secs(2);

async fn key_sync_loop(state: Arc<AppState>) {
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

async fn maintenance_loop(state: Arc<AppState>, every: Duration) {
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

/// The backend `--store` names. A shared store holds the private signing keys of every
/// instance, so it is refused without a key-encryption key to seal them.
fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let spec = config
        .store
        .clone()
        .unwrap_or_else(|| StoreSpec::Sqlite(config.database.clone()));
    match spec {
        StoreSpec::Sqlite(path) => {
            Ok(Arc::new(SqliteStore::open(&path).map_err(|e| {
                StartError(format!("cannot open database {path:?}: {e}"))
            })?))
        }
        StoreSpec::Redis(url) | StoreSpec::RedisCluster(url) => {
            let Some(kek) = config.key_encryption_key.clone() else {
                return Err(StartError(format!(
                    "a Redis store holds the private signing keys of every instance and needs \
                     a key-encryption key to seal them: set {KEK_ENV} to base64 of 32 random \
                     bytes (e.g. `openssl rand -base64 32`), or give \
                     --key-encryption-key-file PATH"
                )));
            };
            Ok(Arc::new(RedisStore::open(&url, kek).map_err(|e| {
                StartError(format!("cannot use the Redis store: {e}"))
            })?))
        }
    }
}

/// The key that seals the provider's tokens and the sign-in state: the configured
/// key-encryption key, else (SQLite) one generated and kept in the database.
fn upstream_kek(
    state: &AppState,
    configured: Option<crate::store::KeyEncryptionKey>,
) -> Result<crate::store::KeyEncryptionKey, StartError> {
    if let Some(kek) = configured {
        return Ok(kek);
    }
    state
        .store
        .upstream_local_kek()
        .map_err(|e| StartError(format!("the upstream mode: {e}")))?
        .ok_or_else(|| {
            StartError(format!(
                "the upstream mode needs a key-encryption key to seal the provider's tokens: \
                 set {KEK_ENV} or --key-encryption-key-file"
            ))
        })
}

fn build_state(config: Config, settings: Settings, log: Log) -> Result<AppState, StartError> {
    let store = open_store(&config)?;
    let passwords = Passwords::new(
        settings.limits.login_concurrency,
        settings.limits.login_queue,
    )
    .map_err(StartError)?;
    for user in &config.demo_users {
        let hash = passwords.hash(&user.password).map_err(StartError)?;
        store
            .upsert_user(&user.username, &hash, &user.name, &user.roles)
            .map_err(|e| StartError(e.to_string()))?;
    }
    let now = config.clock.now();
    let stored = store.load_keys().map_err(|e| StartError(e.to_string()))?;
    let keys = match KeyRing::from_stored(&stored, settings.algorithm)
        .map_err(|e| StartError(e.0))?
    {
        Some(ring) => ring,
        None => {
            // First start, or --alg changed: a new current key; keys of another algorithm
            // are retired and keep verifying their tokens until those expire.
            let new = SigningKey::generate(settings.algorithm, now).map_err(|e| StartError(e.0))?;
            store
                .install_key(&new, now)
                .map_err(|e| StartError(e.to_string()))?;
            let all = store.load_keys().map_err(|e| StartError(e.to_string()))?;
            KeyRing::from_stored(&all, settings.algorithm)
                .map_err(|e| StartError(e.0))?
                .ok_or_else(|| StartError("the new signing key was not stored".into()))?
        }
    };
    tracing::info!(
        kid = %keys.current().kid,
        alg = %settings.algorithm,
        users = config.demo_users.len(),
        "start"
    );
    let dpop_nonces = if config.dpop_nonce {
        let fresh = crate::refresh::new_family_key();
        let secret = store
            .dpop_nonce_secret(&fresh)
            .map_err(|e| StartError(e.to_string()))?;
        Some(crate::dpop::nonce::Nonces::new(secret))
    } else {
        None
    };
    Ok(AppState {
        settings,
        clock: config.clock,
        log,
        store,
        keys,
        passwords,
        switches: Switches::default(),
        counters: Counters::default(),
        last_key_sync: std::sync::Mutex::new(None),
        dpop_nonces,
        upstream: None,
    })
}
