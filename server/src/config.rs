//! Server settings and the command line that fills them.
//!
//! The flags are few and flat, so they are parsed by hand; [`USAGE`] is the reference.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::connections::ConnectionLimits;
use crate::logging::{stderr_sink, LogSink};
use crate::store::{KeyEncryptionKey, StoreSpec, KEK_ENV, STORE_ENV};

/// `--help` text.
pub const USAGE: &str = "\
token-manager-server: reference auth server for wasm-token-manager

USAGE: token-manager-server [FLAGS]

  --listen ADDR            address to listen on (default 127.0.0.1:8080)
  --database PATH          SQLite file, or :memory: (default :memory:)
  --access-ttl SECS        access token lifetime (default 900)
  --refresh-ttl SECS       refresh cookie lifetime, renewed on every refresh (default 604800)
  --grace SECS             window in which a rotated refresh cookie still works (default 10)
  --allowed-origin URL     origin allowed to call the API with credentials; repeatable
                           (default http://localhost:PORT and http://127.0.0.1:PORT)
  --demo-user SPEC         seed an account: NAME:PASSWORD[:DISPLAY NAME[:ROLE,ROLE]]; repeatable.
                           Shows in the process list: prefer the file or the environment
  --demo-user-file PATH    seed the accounts in PATH: one SPEC a line; blank lines and
                           lines starting with # are skipped; repeatable
  --alg RS256|ES256|EdDSA  signing algorithm for new keys (default RS256)
  --key-rotation SECS      rotate the signing key this often; 0 = never (default 86400)
  --issuer URL             iss claim (default http://localhost:PORT)
  --audience NAME          aud claim (default wasm-token-manager-demo)
  --www DIR                served at / (default www)
  --pkg DIR                served at /pkg/ (default pkg)
  --maintenance-interval SECS  how often expired rows are deleted (default 60)
  --session-max-age SECS   absolute session lifetime from the login, whatever the
                           refreshes (default 2592000 = 30 days)
  --grace-replays N        grace-window answers one rotated cookie may get; the next
                           replay is reuse and revokes the session (default 10)
  --login-concurrency N    password hashes run at once (default: number of cores)
  --login-queue N          logins waiting for a hash; beyond, 503 + Retry-After (default 64)
  --login-max-delay SECS   longest login throttle delay; 0 turns throttling off (default 300)
  --test-switches          enable the /test/* endpoints (off by default: they answer 404)
  --header-timeout SECS    time to send the request headers, and to start the next request
                           on a keep-alive connection (default 30)
  --body-timeout SECS      time from the headers to the last byte of the body; later: 408,
                           connection closed (default 10)
  --idle-timeout SECS      close a keep-alive connection idle this long (default 30)
  --max-connections N      open connections at most; at the cap a new one evicts the oldest
                           idle or slow-body connection, or is refused 503 (default 1024)
  --store SPEC             where sessions, the denylist, login throttle counters and
                           signing keys live: sqlite:PATH (the default, with --database),
                           redis://[:PASSWORD@]HOST:PORT[/DB] or
                           redis+cluster://HOST:PORT[,HOST:PORT...] (several instances
                           share one; needs a key-encryption key)
  --key-encryption-key-file PATH  file holding the key-encryption key (base64 of 32 bytes)
                           that seals the signing keys in a shared store
  --help                   print this text

ENVIRONMENT:
  TOKEN_SERVER_DEMO_USERS  accounts to seed, SPECs separated by newlines or commas (a
                           comma-separated piece without ':' is one more role of the
                           account before it: demo:pw,alice:pw2:Alice:admin,user)
  TOKEN_SERVER_STORE       the --store SPEC when the flag is not given
  TOKEN_SERVER_KEY_ENCRYPTION_KEY  the key-encryption key, base64 of 32 bytes, when
                           --key-encryption-key-file is not given
";

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

fn read_demo_user_file(path: &str) -> Result<Vec<DemoUser>, String> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| format!("--demo-user-file {path:?}: cannot read it: {e}"))?;
    let users = DemoUser::parse_file_list(&text);
    zeroize::Zeroize::zeroize(&mut text);
    users
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
            .finish_non_exhaustive()
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Start the server.
    Run(Box<Config>),
    /// Print [`USAGE`] and exit.
    Help,
}

impl Config {
    /// Parses the flags in [`USAGE`] (without the program name).
    pub fn from_args<I>(args: I) -> Result<Command, String>
    where
        I: IntoIterator<Item = String>,
    {
        let mut config = Config::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            // `--flag=value` and `--flag value` are both accepted.
            let (flag, inline) = match flag.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (flag, None),
            };
            let mut value = |name: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--help" | "-h" => return Ok(Command::Help),
                "--store" => config.store = Some(value("--store")?.parse()?),
                "--key-encryption-key-file" => {
                    let path = value("--key-encryption-key-file")?;
                    let text =
                        zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
                            format!("--key-encryption-key-file: cannot read {path:?}: {e}")
                        })?);
                    config.key_encryption_key = Some(
                        KeyEncryptionKey::from_base64(&text)
                            .map_err(|e| format!("--key-encryption-key-file {path:?}: {e}"))?,
                    );
                }
                "--listen" => {
                    let v = value("--listen")?;
                    config.listen = v.parse().map_err(|_| {
                        format!("--listen: {v:?} is not an address like 127.0.0.1:8080")
                    })?;
                }
                "--database" => config.database = value("--database")?,
                "--access-ttl" => {
                    config.access_ttl = positive("--access-ttl", &value("--access-ttl")?)?
                }
                "--refresh-ttl" => {
                    config.refresh_ttl = positive("--refresh-ttl", &value("--refresh-ttl")?)?
                }
                "--grace" => config.grace = seconds("--grace", &value("--grace")?)?,
                "--allowed-origin" => {
                    let origin = normalize_origin(&value("--allowed-origin")?)?;
                    config.allowed_origins.push(origin);
                }
                "--demo-user" => config.demo_users.push(value("--demo-user")?.parse()?),
                "--demo-user-file" => config
                    .demo_users
                    .extend(read_demo_user_file(&value("--demo-user-file")?)?),
                "--alg" => config.algorithm = value("--alg")?.parse()?,
                "--key-rotation" => {
                    let secs = seconds("--key-rotation", &value("--key-rotation")?)?;
                    config.key_rotation = (secs > 0).then_some(secs);
                }
                "--issuer" => config.issuer = Some(value("--issuer")?),
                "--audience" => config.audience = value("--audience")?,
                "--www" => config.www = PathBuf::from(value("--www")?),
                "--pkg" => config.pkg = PathBuf::from(value("--pkg")?),
                "--maintenance-interval" => {
                    config.maintenance_interval =
                        positive("--maintenance-interval", &value("--maintenance-interval")?)?
                }
                "--session-max-age" => {
                    config.session_max_age =
                        positive("--session-max-age", &value("--session-max-age")?)?
                }
                "--grace-replays" => {
                    config.grace_replays = count("--grace-replays", &value("--grace-replays")?)?
                }
                "--login-concurrency" => {
                    config.login_concurrency =
                        count("--login-concurrency", &value("--login-concurrency")?)? as usize
                }
                "--login-queue" => {
                    config.login_queue = count("--login-queue", &value("--login-queue")?)? as usize
                }
                "--login-max-delay" => {
                    config.login_max_delay =
                        seconds("--login-max-delay", &value("--login-max-delay")?)?
                }
                "--header-timeout" => {
                    config.connection_limits.header_timeout =
                        duration("--header-timeout", &value("--header-timeout")?)?
                }
                "--body-timeout" => {
                    config.connection_limits.body_timeout =
                        duration("--body-timeout", &value("--body-timeout")?)?
                }
                "--idle-timeout" => {
                    config.connection_limits.idle_timeout =
                        duration("--idle-timeout", &value("--idle-timeout")?)?
                }
                "--max-connections" => {
                    let v = value("--max-connections")?;
                    config.connection_limits.max_connections = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or_else(|| {
                            format!("--max-connections: {v:?} is not a number from 1 to 1000000")
                        })?;
                }
                "--test-switches" => {
                    if inline.is_some() {
                        return Err("--test-switches takes no value".into());
                    }
                    config.test_switches = true;
                }
                other => return Err(format!("unknown flag {other:?} (see --help)")),
            }
        }
        Ok(Command::Run(Box::new(config)))
    }
}

impl Config {
    /// [`Config::from_args`], then the accounts of [`DEMO_USERS_ENV`] (looked up with `env`)
    /// added to those of the flags. What the binary runs.
    pub fn from_args_and_env<I>(
        args: I,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Command, String>
    where
        I: IntoIterator<Item = String>,
    {
        let mut command = Config::from_args(args)?;
        if let Command::Run(config) = &mut command {
            if config.store.is_none() {
                if let Some(value) = env(STORE_ENV) {
                    let text = value
                        .into_string()
                        .map_err(|_| format!("{STORE_ENV} is not valid UTF-8"))?;
                    config.store = Some(text.parse().map_err(|e| format!("{STORE_ENV}: {e}"))?);
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

fn seconds(flag: &str, v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .ok()
        // Keeps `now + ttl` far from overflow and every value a valid JSON number for JS.
        .filter(|s| *s <= 10 * 365 * 24 * 3600)
        .ok_or_else(|| format!("{flag}: {v:?} is not a number of seconds"))
}

/// A small count (replays, threads, queue slots).
fn count(flag: &str, v: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .ok()
        .filter(|n| *n <= 100_000)
        .ok_or_else(|| format!("{flag}: {v:?} is not a count from 0 to 100000"))
}

/// A timeout flag: whole seconds, at least 1, at most a day.
fn duration(flag: &str, v: &str) -> Result<std::time::Duration, String> {
    match positive(flag, v)? {
        s if s <= 24 * 3600 => Ok(std::time::Duration::from_secs(s)),
        _ => Err(format!("{flag} must be at most 86400 seconds")),
    }
}

fn positive(flag: &str, v: &str) -> Result<u64, String> {
    match seconds(flag, v)? {
        0 => Err(format!("{flag} must be at least 1")),
        s => Ok(s),
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
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        match Config::from_args(args.iter().map(|s| s.to_string()))? {
            Command::Run(c) => Ok(*c),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn no_flags_give_the_documented_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.access_ttl, 900);
        assert_eq!(c.refresh_ttl, 604_800);
        assert_eq!(c.grace, 10);
        assert_eq!(c.algorithm, SigningAlgorithm::Rs256);
        assert!(!c.test_switches);
        assert_eq!(c.session_max_age, 2_592_000);
        assert_eq!(c.grace_replays, 10);
        assert_eq!((c.login_concurrency, c.login_queue), (0, 64));
        assert_eq!(c.login_max_delay, 300);
        let limits = c.connection_limits;
        assert_eq!(limits.header_timeout.as_secs(), 30);
        assert_eq!(limits.body_timeout.as_secs(), 10);
        assert_eq!(limits.idle_timeout.as_secs(), 30);
        assert_eq!(limits.max_connections, 1024);
    }

    #[test]
    fn session_and_login_limit_flags_are_parsed_and_checked() {
        let c = parse(&[
            "--session-max-age",
            "3600",
            "--grace-replays=3",
            "--login-concurrency",
            "2",
            "--login-queue",
            "5",
            "--login-max-delay",
            "0",
        ])
        .unwrap();
        assert_eq!(c.session_max_age, 3600);
        assert_eq!(c.grace_replays, 3);
        assert_eq!((c.login_concurrency, c.login_queue), (2, 5));
        assert_eq!(c.login_max_delay, 0);
        for args in [
            &["--session-max-age", "0"][..],
            &["--grace-replays", "-1"],
            &["--login-queue", "many"],
            &["--login-concurrency", "1000000"],
            &["--login-max-delay"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
    }

    #[test]
    fn connection_limit_flags_are_parsed_and_checked() {
        let c = parse(&[
            "--header-timeout",
            "5",
            "--body-timeout=3",
            "--idle-timeout",
            "7",
            "--max-connections",
            "200",
        ])
        .unwrap();
        let limits = c.connection_limits;
        assert_eq!(limits.header_timeout.as_secs(), 5);
        assert_eq!(limits.body_timeout.as_secs(), 3);
        assert_eq!(limits.idle_timeout.as_secs(), 7);
        assert_eq!(limits.max_connections, 200);
        for args in [
            &["--body-timeout", "0"][..],
            &["--idle-timeout", "100000"],
            &["--header-timeout", "x"],
            &["--max-connections", "0"],
            &["--max-connections", "-5"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
    }

    #[test]
    fn every_flag_is_parsed() {
        let c = parse(&[
            "--listen",
            "0.0.0.0:9000",
            "--database",
            "x.db",
            "--access-ttl",
            "5",
            "--refresh-ttl=60",
            "--grace",
            "2",
            "--allowed-origin",
            "https://app.example/",
            "--allowed-origin",
            "http://localhost:3000",
            "--demo-user",
            "demo:pw",
            "--demo-user",
            "alice:secret:Alice Liddell:admin, user",
            "--alg",
            "EdDSA",
            "--key-rotation",
            "0",
            "--issuer",
            "https://id.example",
            "--audience",
            "api",
            "--www",
            "w",
            "--pkg",
            "p",
            "--maintenance-interval",
            "7",
            "--test-switches",
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.database, "x.db");
        assert_eq!((c.access_ttl, c.refresh_ttl, c.grace), (5, 60, 2));
        assert_eq!(
            c.allowed_origins,
            ["https://app.example", "http://localhost:3000"]
        );
        assert_eq!(c.demo_users[0], DemoUser::new("demo", "pw"));
        assert_eq!(c.demo_users[1].name, "Alice Liddell");
        assert_eq!(c.demo_users[1].roles, ["admin", "user"]);
        assert_eq!(c.algorithm, SigningAlgorithm::EdDsa);
        assert_eq!(c.key_rotation, None);
        assert_eq!(c.issuer.as_deref(), Some("https://id.example"));
        assert_eq!(c.audience, "api");
        assert_eq!(c.maintenance_interval, 7);
        assert!(c.test_switches);
    }

    #[test]
    fn bad_flags_are_errors_not_panics() {
        for args in [
            &["--listen", "nowhere"][..],
            &["--access-ttl", "0"],
            &["--grace", "-1"],
            &["--alg", "HS256"],
            &["--alg", "none"],
            &["--demo-user", "nopassword"],
            &["--allowed-origin", "app.example"],
            &["--allowed-origin", "https://app.example/path"],
            &["--database"],
            &["--frobnicate"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
    }

    #[test]
    fn the_environment_list_takes_newlines_and_commas_and_keeps_roles_together() {
        let users = DemoUser::parse_env_list(
            "demo:pw,alice:secret:Alice Liddell:admin,user\nbob:b0b\r\n\n, carol:c:Carol:ops",
        )
        .unwrap();
        let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["demo", "alice", "bob", "carol"]);
        assert_eq!(users[0], DemoUser::new("demo", "pw"));
        assert_eq!(users[1].password, "secret");
        assert_eq!(users[1].roles, ["admin", "user"]);
        assert_eq!(users[2].password, "b0b");
        assert_eq!(users[3].roles, ["ops"]);
        assert_eq!(DemoUser::parse_env_list("").unwrap(), []);
        // A piece without `:` after a spec without roles is an error, not part of a password.
        assert!(DemoUser::parse_env_list("demo:pw,user").is_err());
    }

    #[test]
    fn a_bad_environment_entry_is_an_error_that_does_not_quote_it() {
        let e = DemoUser::parse_env_list("demo:pw\nhunter2-no-colon").unwrap_err();
        assert!(e.contains("account 2"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = DemoUser::parse_env_list("demo:").unwrap_err();
        assert!(e.contains(DEMO_USERS_ENV), "{e}");
    }

    #[test]
    fn the_environment_adds_to_the_flags_and_is_read_only_when_set() {
        let env = |v: &'static str| {
            move |name: &str| (name == DEMO_USERS_ENV).then(|| std::ffi::OsString::from(v))
        };
        let args = || ["--demo-user".to_owned(), "demo:pw".to_owned()];
        let Command::Run(c) = Config::from_args_and_env(args(), env("alice:secret")).unwrap()
        else {
            panic!("expected run");
        };
        let names: Vec<&str> = c.demo_users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["demo", "alice"]);
        let Command::Run(c) = Config::from_args_and_env(args(), |_| None).unwrap() else {
            panic!("expected run");
        };
        assert_eq!(c.demo_users.len(), 1);
        assert!(Config::from_args_and_env(args(), env("broken")).is_err());
    }

    #[test]
    fn the_file_list_has_one_account_a_line_and_skips_blanks_and_comments() {
        let users = DemoUser::parse_file_list(
            "# demo accounts\n\ndemo:pw\r\n  alice:secret:Alice Liddell:admin,user  \n",
        )
        .unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0], DemoUser::new("demo", "pw"));
        assert_eq!(users[1].roles, ["admin", "user"]);
        let e = DemoUser::parse_file_list("demo:pw\n\nhunter2").unwrap_err();
        assert!(e.contains("line 3") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn demo_user_file_flag_reads_the_file_and_a_missing_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("tms-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users");
        std::fs::write(&path, "demo:pw\nalice:secret\n").unwrap();
        let c = parse(&[
            "--demo-user-file",
            path.to_str().unwrap(),
            "--demo-user",
            "bob:b",
        ])
        .unwrap();
        let names: Vec<&str> = c.demo_users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["demo", "alice", "bob"]);
        let missing = dir.join("missing");
        assert!(parse(&["--demo-user-file", missing.to_str().unwrap()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn demo_user_debug_hides_the_password() {
        let u = DemoUser::new("demo", "hunter2");
        assert!(!format!("{u:?}").contains("hunter2"));
    }

    #[test]
    fn the_store_and_its_key_encryption_key_come_from_flags_or_the_environment() {
        let kek = KeyEncryptionKey::generate().to_base64();
        let env = |store: &'static str, kek: String| {
            move |name: &str| match name {
                STORE_ENV => Some(store.into()),
                KEK_ENV => Some(kek.clone().into()),
                _ => None,
            }
        };
        let run = |args: &[&str], env: &dyn Fn(&str) -> Option<std::ffi::OsString>| {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            match Config::from_args_and_env(args, env)? {
                Command::Run(c) => Ok(*c),
                Command::Help => Err("help".to_owned()),
            }
        };
        let c = run(&[], &env("redis://127.0.0.1:6379", kek.clone())).unwrap();
        assert_eq!(
            c.store,
            Some(StoreSpec::Redis("redis://127.0.0.1:6379".into()))
        );
        assert!(c.key_encryption_key.is_some());
        // The flag wins over the variable.
        let c = run(
            &["--store", "sqlite:a.db"],
            &env("redis://h:1", kek.clone()),
        )
        .unwrap();
        assert_eq!(c.store, Some(StoreSpec::Sqlite("a.db".into())));
        assert_eq!(parse(&[]).unwrap().store, None);
        let dir = std::env::temp_dir().join(format!("kek-{}", std::process::id()));
        std::fs::write(&dir, format!("{kek}\n")).unwrap();
        let c = parse(&["--key-encryption-key-file", dir.to_str().unwrap()]).unwrap();
        assert!(c.key_encryption_key.is_some());
        std::fs::write(&dir, "dG9vIHNob3J0").unwrap();
        let err = parse(&["--key-encryption-key-file", dir.to_str().unwrap()]).unwrap_err();
        assert!(
            err.contains("32 bytes") && !err.contains("dG9vIHNob3J0"),
            "{err}"
        );
        let _ = std::fs::remove_file(&dir);
        let err = run(&[], &env("redis://h:1", "short".into())).unwrap_err();
        assert!(err.contains(KEK_ENV) && !err.contains("short"), "{err}");
        assert!(parse(&["--store", "mysql://x"]).is_err());
    }
}
