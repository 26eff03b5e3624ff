//! Reference auth server for wasm-token-manager.
//!
//! Password login, short-lived signed access tokens (RS256, ES256 or EdDSA, with `kid` and
//! key rotation), and a rotating refresh token in a `__Host-` cookie with reuse detection
//! and a grace window for concurrent tabs and lost responses. Storage is SQLite. The wire
//! types come from `token_manager_core::protocol`, so client and server share one contract.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use token_manager_server::{Config, DemoUser, Server};
//! let mut config = Config::default();
//! config.listen = "127.0.0.1:0".parse()?;
//! config.demo_users.push(DemoUser::new("demo", "demo-password"));
//! let server = Server::bind(config).await?;
//! println!("listening on {}", server.url());
//! server.run().await?;
//! # Ok(()) }
//! ```
//!
//! `server/README.md` documents the endpoints, flags, test switches and data model.

#![deny(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

mod access;
mod cli;
mod clock;
mod config;
mod connections;
mod cors;
pub mod dpop;
mod error;
mod extract;
mod keys;
mod logging;
mod password;
mod refresh;
mod routes;
mod schema;
mod serve;
mod state;
mod static_files;
mod store;
mod switches;
mod throttle;
mod upstream;

pub use cli::{Cli, Command};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, DemoUser, SigningAlgorithm, DEMO_USERS_ENV};
pub use connections::ConnectionLimits;
pub use logging::{null_sink, stderr_sink, LogSink};
#[doc(hidden)]
pub use password::PasswordHashStats;
pub use serve::{Server, StartError};
pub use state::{AppHandle, MaintenanceReport};
pub use store::{
    CleanupReport, KeyEncryptionKey, RefreshTokenStatus, RowCounts, StoreSpec, KEK_ENV, STORE_ENV,
};
pub use switches::Stats;
pub use upstream::{UpstreamConfig, DEFAULT_UPSTREAM_SCOPES, UPSTREAM_CLIENT_SECRET_ENV};
