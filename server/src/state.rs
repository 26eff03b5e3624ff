//! Shared server state, and the operations that are not HTTP handlers: key rotation and
//! the maintenance run (cleanup plus scheduled rotation), also reachable from tests
//! through [`AppHandle`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::access::Expectations;
use crate::clock::Clock;
use crate::config::{Config, SigningAlgorithm};
use crate::error::ApiError;
use crate::keys::{KeyRing, SigningKey};
use crate::logging::Log;
use crate::password::{PasswordHashStats, Passwords};
use crate::refresh::{RefreshToken, SessionRules};
use crate::store::{CleanupReport, RefreshTokenStatus, RowCounts, Store, StoreError};
use crate::switches::{Counters, Stats, Switches};
use crate::throttle::Policy;

/// Configuration after the port is known and defaults are filled in.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) expect: Expectations,
    pub(crate) access_ttl: u64,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) algorithm: SigningAlgorithm,
    pub(crate) key_rotation: Option<u64>,
    pub(crate) www: PathBuf,
    pub(crate) pkg: PathBuf,
    pub(crate) test_switches: bool,
    pub(crate) limits: Limits,
    pub(crate) dpop: DpopSettings,
}

/// The DPoP flags (issue 15).
#[derive(Debug, Clone)]
pub(crate) struct DpopSettings {
    pub(crate) iat_window: u64,
    pub(crate) required: bool,
    pub(crate) public_scheme: String,
}

/// Session lifetime, replay and login limits, from the flags of the same names.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) session: SessionRules,
    /// Password hashes at once (at least 1).
    pub(crate) login_concurrency: usize,
    /// Logins that may wait for a hash.
    pub(crate) login_queue: usize,
    /// The login throttle; `None` with `--login-max-delay 0`.
    pub(crate) throttle: Option<Policy>,
}

impl Limits {
    pub(crate) fn from_config(config: &Config) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            session: SessionRules {
                refresh_ttl: config.refresh_ttl.max(1),
                grace: config.grace,
                grace_replays: config.grace_replays,
                max_age: config.session_max_age.max(1),
            },
            login_concurrency: match config.login_concurrency {
                0 => cores,
                n => n,
            },
            login_queue: config.login_queue,
            throttle: Policy::new(config.login_max_delay),
        }
    }
}

pub(crate) struct AppState {
    pub(crate) settings: Settings,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) log: Log,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: KeyRing,
    pub(crate) passwords: Passwords,
    pub(crate) switches: Switches,
    pub(crate) counters: Counters,
    /// When the last on-demand key sync ran ([`AppState::sync_keys_on_miss`]).
    pub(crate) last_key_sync: std::sync::Mutex<Option<std::time::Instant>>,
    /// `--dpop-nonce`: the nonces, made with the store's secret.
    pub(crate) dpop_nonces: Option<crate::dpop::nonce::Nonces>,
    /// The upstream OpenID Connect provider, in the upstream mode (issue 19).
    pub(crate) upstream: Option<Arc<crate::upstream::Upstream>>,
}

impl AppState {
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Runs database and crypto work on the blocking pool. A panic there becomes a 500,
    /// never a dropped connection.
    pub(crate) async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let state = self.clone();
        match tokio::task::spawn_blocking(move || state.log.scope(|| f(&state))).await {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(what = "blocking task panicked", "error");
                Err(ApiError::server_error())
            }
        }
    }

    /// Logs an internal failure (never containing request secrets) and returns the 500.
    pub(crate) fn internal(&self, what: &str, err: impl fmt::Display) -> ApiError {
        self.log.scope(|| {
            tracing::error!(what, detail = err.to_string(), "error");
        });
        ApiError::server_error()
    }

    /// Logs a store failure and answers it: 503 `temporarily_unavailable` with
    /// `Retry-After` when the store is unreachable (nothing was decided, so the client's
    /// token and cookie stay as they were: the browser package keeps the token and backs
    /// off), 500 otherwise.
    pub(crate) fn store_failed(&self, what: &str, err: StoreError) -> ApiError {
        let unavailable = matches!(err, StoreError::Unavailable(_));
        let answer = self.internal(what, err);
        if unavailable {
            ApiError::busy("the session store is unreachable; try again shortly")
        } else {
            answer
        }
    }

    /// Generates a key of the configured algorithm and makes it current; the previous key
    /// is retired but stays published until its last token expires. Blocking (RSA
    /// generation takes a moment).
    pub(crate) fn rotate_keys(&self) -> Result<String, String> {
        let now = self.now();
        let stored = SigningKey::generate(self.settings.algorithm, now).map_err(|e| e.0)?;
        let key = SigningKey::from_stored(&stored).map_err(|e| e.0)?;
        let kid = key.kid.clone();
        // Loaded before the store makes it current: a refresh transaction that commits
        // in between chooses it and must find it in the ring.
        let key = self.keys.preload(key);
        if let Err(e) = self.store.install_key(&stored, now) {
            self.keys.unload(&kid);
            return Err(e.to_string());
        }
        self.keys.install(key, now);
        self.log.scope(|| {
            tracing::info!(kid = %kid, alg = %self.settings.algorithm, "key_rotated");
        });
        Ok(kid)
    }

    /// Picks up the signing keys other instances of a shared store installed or retired.
    /// Blocking. Nothing to do on an unshared store.
    pub(crate) fn sync_keys(&self) -> Result<(), String> {
        if !self.store.shared() {
            return Ok(());
        }
        let stored = self.store.load_keys().map_err(|e| e.to_string())?;
        self.keys.sync(&stored).map_err(|e| e.0)
    }

    /// [`Self::sync_keys`] on demand (a `kid` this instance lacks), at most once per
    /// second, so tokens with made-up `kid`s cannot turn into store traffic.
    pub(crate) fn sync_keys_on_miss(&self) -> bool {
        if !self.store.shared() {
            return false;
        }
        {
            let mut last = self.last_key_sync.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1)) {
                return false;
            }
            *last = Some(std::time::Instant::now());
        }
        match self.sync_keys() {
            Ok(()) => true,
            Err(e) => {
                let _ = self.internal("key sync", e);
                false
            }
        }
    }

    /// Scheduled rotation if due, then cleanup. Blocking.
    pub(crate) fn maintenance(&self) -> Result<MaintenanceReport, String> {
        let now = self.now();
        self.sync_keys()?;
        let mut rotated = None;
        if let Some(period) = self.settings.key_rotation {
            if now >= self.keys.current().created_at.saturating_add(period) {
                rotated = Some(self.rotate_keys()?);
            }
        }
        let (cleanup, purged) = self.store.cleanup(now).map_err(|e| e.to_string())?;
        self.keys.purge(&purged);
        let total = cleanup.families
            + cleanup.refresh_tokens
            + cleanup.denied_jtis
            + cleanup.signing_keys
            + cleanup.login_throttles
            + cleanup.dpop_proofs;
        if total > 0 {
            self.log.scope(|| {
                tracing::info!(
                    families = cleanup.families,
                    refresh_tokens = cleanup.refresh_tokens,
                    denied_jtis = cleanup.denied_jtis,
                    signing_keys = cleanup.signing_keys,
                    login_throttles = cleanup.login_throttles,
                    dpop_proofs = cleanup.dpop_proofs,
                    "cleanup"
                );
            });
        }
        Ok(MaintenanceReport { rotated, cleanup })
    }
}

/// What one maintenance run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// The new key id, if the scheduled rotation was due.
    pub rotated: Option<String>,
    /// Rows deleted.
    pub cleanup: CleanupReport,
}

/// A handle on a running server for tests, benchmarks and embedders. Its methods block
/// briefly on the database; `rotate_keys` may take a second for RSA.
#[derive(Clone)]
pub struct AppHandle(pub(crate) Arc<AppState>);

impl fmt::Debug for AppHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppHandle")
    }
}

impl AppHandle {
    /// Rotates the signing key now; returns the new `kid`.
    pub fn rotate_keys(&self) -> Result<String, String> {
        self.0.rotate_keys()
    }

    /// Runs the maintenance task once (what the server does every `maintenance_interval`).
    pub fn run_maintenance(&self) -> Result<MaintenanceReport, String> {
        self.0.maintenance()
    }

    /// Signs `signing_input` (the `header.claims` of a compact JWS, taken byte for byte) with
    /// the current key and that key's own algorithm; returns the unpadded base64url signature.
    ///
    /// For tests that forge *validly signed* tokens of a bad shape or with bad claims, to show
    /// `/api/me` refuses them for that reason and not merely for their signature. Hidden: it
    /// gives nothing away, since whoever holds the handle already runs the server.
    #[doc(hidden)]
    pub fn sign_with_current_key(&self, signing_input: &[u8]) -> Result<String, String> {
        let key = self.0.keys.current();
        jsonwebtoken::crypto::sign(signing_input, &key.encoding, key.alg.jwt())
            .map_err(|e| format!("signing failed: {e}"))
    }

    /// `kid` of the key that signs new tokens.
    pub fn current_kid(&self) -> String {
        self.0.keys.current().kid.clone()
    }

    /// The server's counters.
    pub fn stats(&self) -> Stats {
        self.0.counters.snapshot()
    }

    /// The state of the refresh token carried by a cookie value.
    pub fn refresh_token_status(&self, cookie_value: &str) -> Result<RefreshTokenStatus, String> {
        match RefreshToken::parse(cookie_value) {
            None => Ok(RefreshTokenStatus::Unknown),
            Some(t) => self
                .0
                .store
                .token_status(&t.hash())
                .map_err(|e| e.to_string()),
        }
    }

    /// Runs `hook` on the blocking pool just before every refresh's database transaction
    /// (`None` removes it). For tests that force an interleaving, such as a key rotation
    /// landing in the middle of a refresh.
    #[doc(hidden)]
    pub fn set_before_refresh_transaction(&self, hook: Option<Arc<dyn Fn() + Send + Sync>>) {
        self.0.switches.set_before_refresh_transaction(hook);
    }

    /// Password verifications running now, their peak, and logins waiting for a permit.
    #[doc(hidden)]
    pub fn password_hashes(&self) -> PasswordHashStats {
        self.0.passwords.stats()
    }

    /// While `true`, every password verification waits before it hashes, so a test can
    /// count how many the server lets run at once.
    #[doc(hidden)]
    pub fn hold_password_hashes(&self, hold: bool) {
        self.0.passwords.hold(hold);
    }

    /// Number of rows in each table.
    pub fn row_counts(&self) -> Result<RowCounts, String> {
        self.0.store.row_counts().map_err(|e| e.to_string())
    }
}
