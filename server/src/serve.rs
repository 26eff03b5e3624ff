//! Startup and the accept loop.
//!
//! The loop is hyper's, not `axum::serve`, for one reason: the drop-next-refresh switch
//! must close a connection without writing any response. A hyper service that returns an
//! error does exactly that, so responses marked [`AbortConnection`] become errors here.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::access::Expectations;
use crate::config::{normalize_origin, Config};
use crate::keys::{KeyRing, SigningKey};
use crate::logging::Log;
use crate::password::Passwords;
use crate::routes::{router, AbortConnection};
use crate::state::{AppHandle, AppState, Limits, Settings};
use crate::store::Store;
use crate::switches::{Counters, Switches};

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
        };
        let maintenance_interval = Duration::from_secs(config.maintenance_interval.max(1));
        let log = Log::new(config.log.clone());
        let state = tokio::task::spawn_blocking(move || build_state(config, settings, log))
            .await
            .map_err(|_| StartError("startup panicked".into()))??;
        let state = Arc::new(state);
        Ok(Server {
            listener,
            addr,
            router: router(state.clone()),
            state,
            maintenance_interval,
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
            ..
        } = self;
        let maintenance = tokio::spawn(maintenance_loop(state.clone(), maintenance_interval));
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Running out of file descriptors is transient; back off, don't exit.
                        state.log.line(format_args!("event=accept_error detail={:?}", e.to_string()));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let router = router.clone();
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    let mut router = router.clone();
                    request.extensions_mut().insert(ConnectInfo(peer));
                    async move {
                        let response =
                            match tower_service::Service::call(&mut router, request).await {
                                Ok(response) => response,
                                Err(never) => match never {},
                            };
                        if response.extensions().get::<AbortConnection>().is_some() {
                            return Err(Dropped);
                        }
                        Ok::<_, Dropped>(response)
                    }
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                // Slow-loris guard: a client gets 30 s to send its headers.
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
        drop(listener);
        maintenance.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
        Ok(())
    }
}

// Keeps the type checker honest that the router never fails.
const _: fn() = || {
    fn infallible<S: tower_service::Service<hyper::Request<Incoming>, Error = Infallible>>() {}
    infallible::<Router>();
};

async fn maintenance_loop(state: Arc<AppState>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let s = state.clone();
        match tokio::task::spawn_blocking(move || s.maintenance()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => state.log.line(format_args!(
                "event=error what=\"maintenance\" detail={e:?}"
            )),
            Err(_) => state
                .log
                .line(format_args!("event=error what=\"maintenance panicked\"")),
        }
    }
}

fn build_state(config: Config, settings: Settings, log: Log) -> Result<AppState, StartError> {
    let store = Store::open(&config.database)
        .map_err(|e| StartError(format!("cannot open database {:?}: {e}", config.database)))?;
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
    log.line(format_args!(
        "event=start kid={} alg={} users={}",
        keys.current().kid,
        settings.algorithm,
        config.demo_users.len()
    ));
    Ok(AppState {
        settings,
        clock: config.clock,
        log,
        store,
        keys,
        passwords,
        switches: Switches::default(),
        counters: Counters::default(),
    })
}
