//! The environment variables clap does not read: the ones that hold secrets (the store URL
//! may carry a password, the key-encryption key and the provider's client secret are keys)
//! and the list of demo accounts, looked up through the `env` an embedder or a test passes.

use std::ffi::OsString;

use super::Command;
use crate::config::{Config, DemoUser, DEMO_USERS_ENV};
use crate::store::{KeyEncryptionKey, KEK_ENV, STORE_ENV};
use crate::upstream::UPSTREAM_CLIENT_SECRET_ENV;

impl Config {
    /// [`Config::from_args`], then the accounts of [`DEMO_USERS_ENV`] (looked up with `env`)
    /// added to those of the flags. What the binary runs.
    pub fn from_args_and_env<I>(
        args: I,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Command, String>
    where
        I: IntoIterator<Item = String>,
    {
        let mut command = Config::from_args(args)?;
        if let Command::Run(config) = &mut command {
            // clap has read the process environment already; `env` is what an embedder
            // or a test passes.
            if config.store.is_none() {
                if let Some(value) = env(STORE_ENV) {
                    let text = value
                        .into_string()
                        .map_err(|_| format!("{STORE_ENV} is not valid UTF-8"))?;
                    config.store = Some(text.parse().map_err(|e| format!("{STORE_ENV}: {e}"))?);
                }
            }
            // The key itself is a secret: read here, never by clap (whose errors and
            // --help would show it).
            if let Some(upstream) = config.upstream.as_mut() {
                if upstream.client_secret.is_empty() {
                    let value = env(UPSTREAM_CLIENT_SECRET_ENV).ok_or_else(|| {
                        format!(
                            "--upstream-issuer needs the client secret: \
                             --upstream-client-secret-file PATH or {UPSTREAM_CLIENT_SECRET_ENV}"
                        )
                    })?;
                    let text = value
                        .into_string()
                        .map_err(|_| format!("{UPSTREAM_CLIENT_SECRET_ENV} is not valid UTF-8"))?;
                    *upstream.client_secret = text.trim().to_owned();
                }
            }
            if config.key_encryption_key.is_none() {
                if let Some(value) = env(KEK_ENV) {
                    let text = zeroize::Zeroizing::new(
                        value
                            .into_string()
                            .map_err(|_| format!("{KEK_ENV} is not valid UTF-8"))?,
                    );
                    config.key_encryption_key = Some(
                        KeyEncryptionKey::from_base64(&text)
                            .map_err(|e| format!("{KEK_ENV}: {e}"))?,
                    );
                }
            }
        }
        if let (Command::Run(config), Some(value)) = (&mut command, env(DEMO_USERS_ENV)) {
            let text = value
                .into_string()
                .map_err(|_| format!("{DEMO_USERS_ENV} is not valid UTF-8"))?;
            config.demo_users.extend(DemoUser::parse_env_list(&text)?);
        }
        Ok(command)
    }
}
