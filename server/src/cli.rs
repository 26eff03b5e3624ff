//! The command line: every flag of [`Cli`], each with an environment variable
//! (`TOKEN_SERVER_` and the flag's name, for container deployments; a flag given on the
//! command line wins), parsed by clap into a [`Config`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{ArgAction, Parser};

use crate::config::{Config, DemoUser, SigningAlgorithm};
use crate::store::{KeyEncryptionKey, StoreSpec, STORE_ENV};
use upstream::UpstreamArgs;
use values::{
    address, algorithm, count, max_connections, origin, positive, seconds, spec, timeout, Spec,
};

mod environment;
mod upstream;
mod values;

/// The flags of `token-manager-server`; `--help` prints them. Values are checked as they
/// are parsed, so a bad one is an error that names its flag.
#[derive(Debug, Parser)]
#[command(
    name = "token-manager-server",
    about = "token-manager-server: reference auth server for wasm-token-manager",
    after_help = AFTER_HELP,
    // A flag given twice takes its last value, as scripts that append overrides expect;
    // repeatable flags still collect every value.
    args_override_self = true
)]
pub struct Cli {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", env = "TOKEN_SERVER_LISTEN", default_value = "127.0.0.1:8080", value_parser = address)]
    listen: SocketAddr,
    /// SQLite file, or :memory:
    #[arg(
        long,
        value_name = "PATH",
        env = "TOKEN_SERVER_DATABASE",
        default_value = ":memory:"
    )]
    database: String,
    /// Access token lifetime
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_ACCESS_TTL", default_value = "900", value_parser = positive)]
    access_ttl: u64,
    /// Refresh cookie lifetime, renewed on every refresh [default: 604800 = 7 days]
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_REFRESH_TTL", default_value = "604800", hide_default_value = true, value_parser = positive)]
    refresh_ttl: u64,
    /// Window in which a rotated refresh cookie still works
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_GRACE", default_value = "10", value_parser = seconds)]
    grace: u64,
    /// Origin allowed to call the API with credentials; repeatable, comma-separated in the
    /// variable [default: http://localhost:PORT and http://127.0.0.1:PORT]
    #[arg(long, value_name = "URL", env = "TOKEN_SERVER_ALLOWED_ORIGIN", value_delimiter = ',', value_parser = origin)]
    allowed_origin: Vec<String>,
    /// Seed an account: NAME:PASSWORD[:DISPLAY NAME[:ROLE,ROLE]]; repeatable. Shows in the
    /// process list: prefer the file or TOKEN_SERVER_DEMO_USERS (below)
    // Parsed after clap, whose errors quote the value: this one holds a password.
    #[arg(long, value_name = "SPEC", value_parser = spec)]
    demo_user: Vec<Spec>,
    /// Seed the accounts in PATH: one SPEC a line; blank lines and lines starting with # are
    /// skipped; repeatable, comma-separated in the variable
    #[arg(
        long,
        value_name = "PATH",
        env = "TOKEN_SERVER_DEMO_USER_FILE",
        value_delimiter = ','
    )]
    demo_user_file: Vec<String>,
    /// Signing algorithm for new keys: RS256, ES256 or EdDSA
    #[arg(long, value_name = "ALG", env = "TOKEN_SERVER_ALG", default_value = "RS256", value_parser = algorithm)]
    alg: SigningAlgorithm,
    /// Rotate the signing key this often; 0 = never
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_KEY_ROTATION", default_value = "86400", value_parser = seconds)]
    key_rotation: u64,
    /// The iss claim [default: http://localhost:PORT]
    #[arg(long, value_name = "URL", env = "TOKEN_SERVER_ISSUER")]
    issuer: Option<String>,
    /// The aud claim
    #[arg(
        long,
        value_name = "NAME",
        env = "TOKEN_SERVER_AUDIENCE",
        default_value = "wasm-token-manager-demo"
    )]
    audience: String,
    /// Directory served at /
    #[arg(
        long,
        value_name = "DIR",
        env = "TOKEN_SERVER_WWW",
        default_value = "www"
    )]
    www: PathBuf,
    /// Directory served at /pkg/
    #[arg(
        long,
        value_name = "DIR",
        env = "TOKEN_SERVER_PKG",
        default_value = "pkg"
    )]
    pkg: PathBuf,
    /// How often expired rows are deleted
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_MAINTENANCE_INTERVAL", default_value = "60", value_parser = positive)]
    maintenance_interval: u64,
    /// Absolute session lifetime from the login, whatever the refreshes
    /// [default: 2592000 = 30 days]
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_SESSION_MAX_AGE", default_value = "2592000", hide_default_value = true, value_parser = positive)]
    session_max_age: u64,
    /// Grace-window answers one rotated cookie may get; the next replay is reuse and
    /// revokes the session
    #[arg(long, value_name = "N", env = "TOKEN_SERVER_GRACE_REPLAYS", default_value = "10", value_parser = count)]
    grace_replays: u32,
    /// Password hashes run at once; 0 = the number of cores
    #[arg(long, value_name = "N", env = "TOKEN_SERVER_LOGIN_CONCURRENCY", default_value = "0", value_parser = count)]
    login_concurrency: u32,
    /// Logins waiting for a hash; beyond, 503 + Retry-After
    #[arg(long, value_name = "N", env = "TOKEN_SERVER_LOGIN_QUEUE", default_value = "64", value_parser = count)]
    login_queue: u32,
    /// Longest login throttle delay; 0 turns throttling off
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_LOGIN_MAX_DELAY", default_value = "300", value_parser = seconds)]
    login_max_delay: u64,
    /// Enable the /test/* endpoints (off by default: they answer 404)
    #[arg(long, env = "TOKEN_SERVER_TEST_SWITCHES", action = ArgAction::SetTrue)]
    test_switches: bool,
    /// Time to send the request headers, and to start the next request on a keep-alive
    /// connection
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_HEADER_TIMEOUT", default_value = "30", value_parser = timeout)]
    header_timeout: Duration,
    /// Time from the headers to the last byte of the body; later: 408, connection closed
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_BODY_TIMEOUT", default_value = "10", value_parser = timeout)]
    body_timeout: Duration,
    /// Close a keep-alive connection idle this long
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_IDLE_TIMEOUT", default_value = "30", value_parser = timeout)]
    idle_timeout: Duration,
    /// Open connections at most; at the cap a new one evicts the oldest idle or slow-body
    /// connection, or is refused 503
    #[arg(long, value_name = "N", env = "TOKEN_SERVER_MAX_CONNECTIONS", default_value = "1024", value_parser = max_connections)]
    max_connections: usize,
    /// Where sessions, the denylist, login throttle counters and signing keys live:
    /// sqlite:PATH (the default, with --database), redis://[:PASSWORD@]HOST:PORT[/DB] or
    /// redis+cluster://HOST:PORT[,HOST:PORT...] (several instances share one; needs a
    /// key-encryption key)
    // Parsed after clap, whose errors quote the value: a Redis URL may hold a password
    // (for the same reason the variable's value is not shown in --help).
    #[arg(long, value_name = "SPEC", env = STORE_ENV, hide_env_values = true)]
    store: Option<String>,
    /// File holding the key-encryption key (base64 of 32 bytes) that seals the signing keys
    /// in a shared store
    #[arg(
        long,
        value_name = "PATH",
        env = "TOKEN_SERVER_KEY_ENCRYPTION_KEY_FILE"
    )]
    key_encryption_key_file: Option<String>,
    /// Seconds a DPoP proof's iat may be off the server clock, each side (and how long its
    /// jti is remembered against replay)
    #[arg(long, value_name = "SECS", env = "TOKEN_SERVER_DPOP_IAT_WINDOW", default_value = "60", value_parser = positive)]
    dpop_iat_window: u64,
    /// Require server nonces (DPoP-Nonce) in DPoP proofs
    #[arg(long, env = "TOKEN_SERVER_DPOP_NONCE", action = ArgAction::SetTrue)]
    dpop_nonce: bool,
    /// Refuse logins without a DPoP proof
    #[arg(long, env = "TOKEN_SERVER_DPOP_REQUIRED", action = ArgAction::SetTrue)]
    dpop_required: bool,
    /// Scheme clients use to reach the server (https behind a TLS proxy): a DPoP proof's
    /// htu must be this, the Host header and the path
    #[arg(long, value_name = "SCHEME", env = "TOKEN_SERVER_PUBLIC_SCHEME", default_value = "http", value_parser = ["http", "https"])]
    public_scheme: String,
    /// The upstream mode's flags (`cli/upstream.rs`).
    #[command(flatten)]
    upstream: UpstreamArgs,
}

const AFTER_HELP: &str = "\
Every flag but --demo-user can also be set by its environment variable, shown in brackets;
the flag wins. A boolean variable is off when empty or one of 0, false, no, off.

ENVIRONMENT:
  TOKEN_SERVER_DEMO_USERS  accounts to seed, added to --demo-user and --demo-user-file:
                           SPECs separated by newlines or commas (a comma-separated piece
                           without ':' is one more role of the account before it:
                           demo:pw,alice:pw2:Alice:admin,user)
  TOKEN_SERVER_KEY_ENCRYPTION_KEY  the key-encryption key, base64 of 32 bytes, when
                           --key-encryption-key-file is not given
  TOKEN_SERVER_UPSTREAM_CLIENT_SECRET  the provider client secret, when
                           --upstream-client-secret-file is not given";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Start the server.
    Run(Box<Config>),
    /// Print this text (the `--help` output) and exit successfully.
    Help(String),
}

impl Config {
    /// Parses the flags of [`Cli`] (without the program name), with each flag's
    /// environment variable as a fallback. `Err` is the message to print, with the usage.
    pub fn from_args<I>(args: I) -> Result<Command, String>
    where
        I: IntoIterator<Item = String>,
    {
        let argv = std::iter::once("token-manager-server".to_owned()).chain(args);
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.into_config().map(|c| Command::Run(Box::new(c))),
            Err(e) if e.kind() == ErrorKind::DisplayHelp => {
                Ok(Command::Help(e.render().to_string()))
            }
            Err(e) => Err(e.render().to_string()),
        }
    }
}

impl Cli {
    /// The [`Config`] of these flags; reads the `--demo-user-file`s.
    pub fn into_config(mut self) -> Result<Config, String> {
        let mut demo_users = Vec::new();
        for path in &self.demo_user_file {
            demo_users.extend(read_demo_user_file(path)?);
        }
        for spec in std::mem::take(&mut self.demo_user) {
            demo_users.push(spec.0.parse()?);
        }
        let store = match self.store.take() {
            Some(spec) => Some(
                spec.parse::<StoreSpec>()
                    .map_err(|e| format!("--store: {e}"))?,
            ),
            None => None,
        };
        let key_encryption_key = match &self.key_encryption_key_file {
            Some(path) => {
                let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    format!("--key-encryption-key-file: cannot read {path:?}: {e}")
                })?);
                Some(
                    KeyEncryptionKey::from_base64(&text)
                        .map_err(|e| format!("--key-encryption-key-file {path:?}: {e}"))?,
                )
            }
            None => None,
        };
        let upstream = self.upstream.config()?;
        let mut config = Config {
            listen: self.listen,
            database: self.database,
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            grace: self.grace,
            allowed_origins: self.allowed_origin,
            demo_users,
            algorithm: self.alg,
            key_rotation: (self.key_rotation > 0).then_some(self.key_rotation),
            issuer: self.issuer,
            audience: self.audience,
            www: self.www,
            pkg: self.pkg,
            test_switches: self.test_switches,
            maintenance_interval: self.maintenance_interval,
            session_max_age: self.session_max_age,
            grace_replays: self.grace_replays,
            login_concurrency: self.login_concurrency as usize,
            login_queue: self.login_queue as usize,
            login_max_delay: self.login_max_delay,
            store,
            key_encryption_key,
            dpop_iat_window: self.dpop_iat_window,
            dpop_nonce: self.dpop_nonce,
            dpop_required: self.dpop_required,
            public_scheme: self.public_scheme,
            upstream,
            ..Config::default()
        };
        let limits = &mut config.connection_limits;
        limits.header_timeout = self.header_timeout;
        limits.body_timeout = self.body_timeout;
        limits.idle_timeout = self.idle_timeout;
        limits.max_connections = self.max_connections;
        Ok(config)
    }
}

fn read_demo_user_file(path: &str) -> Result<Vec<DemoUser>, String> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| format!("--demo-user-file {path:?}: cannot read it: {e}"))?;
    let users = DemoUser::parse_file_list(&text);
    zeroize::Zeroize::zeroize(&mut text);
    users
}

#[cfg(test)]
mod tests;
