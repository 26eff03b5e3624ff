//! Server settings: [`Config`], what an embedder fills in and what the command line
//! (`cli.rs`) produces, and the demo accounts it seeds.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::connections::ConnectionLimits;
use crate::logging::{stderr_sink, LogSink};
use crate::store::{KeyEncryptionKey, StoreSpec};

/// The environment variable read by [`Config::from_args_and_env`] for accounts to seed.
pub const DEMO_USERS_ENV: &str = "TOKEN_SERVER_DEMO_USERS";

/// Algorithm of the server's signing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys. The default: every verifier supports it.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlgorithm {
    /// The JOSE name (`RS256`, `ES256`, `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// All three, for benchmarks and tests.
    pub const ALL: [SigningAlgorithm; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl FromStr for SigningAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(format!(
                "unsupported algorithm {other:?}: expected RS256, ES256 or EdDSA"
            )),
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account seeded at startup (created, or updated if it exists).
#[derive(Clone, PartialEq, Eq)]
pub struct DemoUser {
    /// Login name; also the `sub` claim.
    pub username: String,
    /// Plain-text password; hashed with argon2id before it is stored.
    pub password: String,
    /// `name` claim. Defaults to the login name.
    pub name: String,
    /// `roles` claim. Defaults to `["user"]`.
    pub roles: Vec<String>,
}

impl DemoUser {
    /// A user whose display name is its login name and whose only role is `user`.
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
            name: username.to_owned(),
            roles: vec!["user".to_owned()],
        }
    }
}

impl FromStr for DemoUser {
    type Err = String;

    /// `NAME:PASSWORD`, `NAME:PASSWORD:DISPLAY NAME` or `NAME:PASSWORD:DISPLAY NAME:ROLE,ROLE`.
    /// A password containing `:` cannot be given this way.
    fn from_str(spec: &str) -> Result<Self, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (username, password) = match parts.as_slice() {
            [u, p, ..] if !u.is_empty() && !p.is_empty() => (*u, *p),
            _ => return Err("--demo-user expects NAME:PASSWORD[:DISPLAY NAME[:ROLES]]".into()),
        };
        if parts.len() > 4 {
            return Err("--demo-user has too many ':' fields".into());
        }
        let mut user = DemoUser::new(username, password);
        if let Some(name) = parts.get(2).filter(|n| !n.is_empty()) {
            user.name = (*name).to_owned();
        }
        if let Some(roles) = parts.get(3) {
            user.roles = roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(user)
    }
}

impl DemoUser {
    /// The accounts of [`DEMO_USERS_ENV`]: specs separated by newlines or commas. Roles are
    /// comma-separated too, so a comma-separated piece without `:` (which no spec lacks) is
    /// one more role of the spec before it. Errors name the entry's position, never its text.
    pub fn parse_env_list(text: &str) -> Result<Vec<DemoUser>, String> {
        let mut specs: Vec<String> = Vec::new();
        for line in text.lines() {
            let mut continues = false;
            for piece in line.split(',') {
                match specs.last_mut() {
                    // Only a spec whose roles field has begun (three `:`) takes more roles;
                    // anything else would quietly become part of a password.
                    Some(last)
                        if continues && !piece.contains(':') && last.matches(':').count() == 3 =>
                    {
                        last.push(',');
                        last.push_str(piece);
                    }
                    _ if piece.trim().is_empty() => {}
                    _ => specs.push(piece.trim().to_owned()),
                }
                continues = true;
            }
        }
        let users = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                spec.parse()
                    .map_err(|e| format!("{DEMO_USERS_ENV}, account {}: {e}", i + 1))
            })
            .collect();
        for mut spec in specs {
            zeroize::Zeroize::zeroize(&mut spec);
        }
        users
    }

    /// The accounts of a `--demo-user-file`: one spec a line; blank lines and lines
    /// starting with `#` are skipped. Errors name the line number, never its text.
    pub fn parse_file_list(text: &str) -> Result<Vec<DemoUser>, String> {
        text.lines()
            .enumerate()
            .map(|(i, line)| (i, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
            .map(|(i, line)| {
                line.parse()
                    .map_err(|e| format!("--demo-user-file line {}: {e}", i + 1))
            })
            .collect()
    }
}

impl fmt::Debug for DemoUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoUser")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .finish()
    }
}

impl Drop for DemoUser {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
}

/// Everything the server needs to start. [`Config::default`] is what the binary runs
/// with no flags; tests change fields directly.
#[derive(Clone)]
pub struct Config {
    /// Address to bind. Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// SQLite database path, or `:memory:`.
    pub database: String,
    /// Access token lifetime in seconds. Defaults to 900.
    pub access_ttl: u64,
    /// Refresh cookie lifetime in seconds, renewed by every rotation. Defaults to 7 days.
    pub refresh_ttl: u64,
    /// Seconds after its rotation during which a refresh cookie still yields a session.
    /// Defaults to 10.
    pub grace: u64,
    /// Origins allowed to call the API with credentials. Empty means
    /// `http://localhost:PORT` and `http://127.0.0.1:PORT` of the bound port.
    pub allowed_origins: Vec<String>,
    /// Accounts created (or updated) at startup.
    pub demo_users: Vec<DemoUser>,
    /// Algorithm of newly generated signing keys. Defaults to RS256.
    pub algorithm: SigningAlgorithm,
    /// Rotate the signing key after this many seconds; `None` never rotates on schedule.
    /// Defaults to one day.
    pub key_rotation: Option<u64>,
    /// `iss` claim. `None` means `http://localhost:PORT`.
    pub issuer: Option<String>,
    /// `aud` claim. Defaults to `wasm-token-manager-demo`.
    pub audience: String,
    /// Directory served at `/`. Defaults to `www`.
    pub www: PathBuf,
    /// Directory served at `/pkg/`. Defaults to `pkg`.
    pub pkg: PathBuf,
    /// Enables the `/test/*` endpoints. Defaults to off.
    pub test_switches: bool,
    /// Real seconds between two runs of the maintenance task (cleanup, scheduled rotation).
    /// Defaults to 60.
    pub maintenance_interval: u64,
    /// Absolute session lifetime in seconds, from the login: refreshes never extend a
    /// session past it. Defaults to 30 days.
    pub session_max_age: u64,
    /// Grace-window answers one rotated refresh cookie may get; the next replay counts as
    /// reuse and revokes the family. Defaults to 10.
    pub grace_replays: u32,
    /// Password hashes (19 MiB each) running at once; 0 means the number of cores.
    /// Defaults to 0.
    pub login_concurrency: usize,
    /// Logins that may wait for a hash; beyond, 503 `temporarily_unavailable`.
    /// Defaults to 64.
    pub login_queue: usize,
    /// Longest delay the login throttle imposes, in seconds; 0 turns it off.
    /// Defaults to 300.
    pub login_max_delay: u64,
    /// Timeouts for slow clients and the cap on open connections (`--header-timeout`,
    /// `--body-timeout`, `--idle-timeout`, `--max-connections`).
    pub connection_limits: ConnectionLimits,
    /// Time source. Defaults to the system clock.
    pub clock: Arc<dyn Clock>,
    /// Where log lines go. Defaults to stderr.
    pub log: LogSink,

    // Distributed store (issue 14).
    /// `--store`: `None` is SQLite at [`Config::database`].
    pub store: Option<StoreSpec>,
    /// `--key-encryption-key-file` or `TOKEN_SERVER_KEY_ENCRYPTION_KEY`: seals the private
    /// signing keys in a shared store. A Redis store refuses to start without one.
    pub key_encryption_key: Option<KeyEncryptionKey>,

    // DPoP (issue 15).
    /// `--dpop-iat-window`: seconds a proof's `iat` may be off the server clock, each side;
    /// also how long its `jti` is remembered. Defaults to 60.
    pub dpop_iat_window: u64,
    /// `--dpop-nonce`: require server nonces in proofs. Defaults to off.
    pub dpop_nonce: bool,
    /// `--dpop-required`: refuse a login without a proof. Defaults to off.
    pub dpop_required: bool,
    /// `--public-scheme`: `http` or `https`, the scheme clients use to reach the server
    /// (behind a TLS proxy: `https`); the `htu` of a proof is this, the `Host` header and
    /// the path. Defaults to `http`.
    pub public_scheme: String,
    // Upstream mode (issue 19).
    /// `--upstream-issuer` and the flags with it: the server signs users in at this
    /// OpenID Connect provider instead of with passwords. `None`: local accounts.
    pub upstream: Option<crate::upstream::UpstreamConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: ":memory:".into(),
            access_ttl: 900,
            refresh_ttl: 7 * 24 * 3600,
            grace: 10,
            allowed_origins: Vec::new(),
            demo_users: Vec::new(),
            algorithm: SigningAlgorithm::Rs256,
            key_rotation: Some(24 * 3600),
            issuer: None,
            audience: "wasm-token-manager-demo".into(),
            www: PathBuf::from("www"),
            pkg: PathBuf::from("pkg"),
            test_switches: false,
            maintenance_interval: 60,
            session_max_age: 30 * 24 * 3600,
            grace_replays: 10,
            login_concurrency: 0,
            login_queue: 64,
            login_max_delay: 300,
            connection_limits: ConnectionLimits::default(),
            clock: Arc::new(SystemClock),
            log: stderr_sink(),
            store: None,
            key_encryption_key: None,
            dpop_iat_window: 60,
            dpop_nonce: false,
            dpop_required: false,
            public_scheme: "http".into(),
            upstream: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("grace", &self.grace)
            .field("allowed_origins", &self.allowed_origins)
            .field("demo_users", &self.demo_users)
            .field("algorithm", &self.algorithm)
            .field("key_rotation", &self.key_rotation)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("www", &self.www)
            .field("pkg", &self.pkg)
            .field("test_switches", &self.test_switches)
            .field("maintenance_interval", &self.maintenance_interval)
            .field("session_max_age", &self.session_max_age)
            .field("grace_replays", &self.grace_replays)
            .field("login_concurrency", &self.login_concurrency)
            .field("login_queue", &self.login_queue)
            .field("login_max_delay", &self.login_max_delay)
            .field("connection_limits", &self.connection_limits)
            .field("store", &self.store)
            .field("key_encryption_key", &self.key_encryption_key)
            .field("dpop_iat_window", &self.dpop_iat_window)
            .field("dpop_nonce", &self.dpop_nonce)
            .field("dpop_required", &self.dpop_required)
            .field("public_scheme", &self.public_scheme)
            .finish_non_exhaustive()
    }
}

/// Checks that `origin` is `scheme://host[:port]` and drops a trailing `/`, so that it
/// compares equal to the `Origin` header browsers send.
pub(crate) fn normalize_origin(origin: &str) -> Result<String, String> {
    let trimmed = origin.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("--allowed-origin {origin:?} must start with http:// or https://")
        })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "--allowed-origin {origin:?} must be scheme://host[:port] with no path"
        ));
    }
    Ok(trimmed.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
