//! The server: bind, start and run until shutdown.
//!
//! Startup (from a [`Config`] to the state) is `serve/startup.rs`, the accept loop and the
//! serving of one connection `serve/accept.rs`, the periodic maintenance and key sync
//! `serve/background.rs`.

mod accept;
mod background;
mod startup;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::access::Expectations;
use crate::config::{normalize_origin, Config};
use crate::connections::{ConnectionLimits, Connections};
use crate::logging::Log;
use crate::routes::router;
use crate::state::{AppHandle, AppState, DpopSettings, Limits, Settings};
use background::{key_sync_loop, maintenance_loop};
use startup::{build_state, upstream_kek};
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
        accept::accept_until(
            &listener,
            &state,
            &router,
            &connections,
            limits,
            stop_signal,
            shutdown,
        )
        .await;
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
