//! From a [`Config`] to the [`AppState`] a server runs on: the store it names, the demo
//! users seeded, the signing keys loaded (or a first one created), the DPoP nonce secret
//! and the key that seals the upstream mode's tokens.

use std::sync::Arc;

use super::StartError;
use crate::config::Config;
use crate::keys::{KeyRing, SigningKey};
use crate::logging::Log;
use crate::password::Passwords;
use crate::state::{AppState, Settings};
use crate::store::{RedisStore, SqliteStore, Store, StoreSpec, KEK_ENV};
use crate::switches::{Counters, Switches};

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
pub(super) fn upstream_kek(
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

pub(super) fn build_state(
    config: Config,
    settings: Settings,
    log: Log,
) -> Result<AppState, StartError> {
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
