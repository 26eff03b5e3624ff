//! Shared test harness: a fresh server per test on 127.0.0.1:0 with a virtual clock and
//! captured logs, plus helpers for the protocol's requests.

#![allow(dead_code)]

pub mod binary;
pub mod http;
pub mod redis;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use token_manager_server::{
    AppHandle, Config, DemoUser, KeyEncryptionKey, ManualClock, Server, SigningAlgorithm, StoreSpec,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use http::{Request, Response};

/// Where the virtual clock starts (2023-11-14).
pub const START: u64 = 1_700_000_000;
pub const USER: &str = "demo";
pub const PASSWORD: &str = "demo-password";

pub struct TestServer {
    pub addr: SocketAddr,
    pub origin: String,
    pub clock: Arc<ManualClock>,
    pub handle: AppHandle,
    pub logs: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// The config every test starts from: in-memory database, ES256 (fast key generation),
/// the demo user, a manual clock and a log sink that records every line.
pub fn test_config(clock: &Arc<ManualClock>, logs: &Arc<Mutex<Vec<String>>>) -> Config {
    let sink_logs = logs.clone();
    let store = test_store();
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        algorithm: SigningAlgorithm::Es256,
        demo_users: vec![
            format!("{USER}:{PASSWORD}:Demo User:user,admin")
                .parse()
                .unwrap(),
            DemoUser::new("other", "other-password"),
        ],
        clock: clock.clone(),
        log: Arc::new(move |line: &str| sink_logs.lock().unwrap().push(line.to_owned())),
        // Real-time maintenance must not interfere: tests run it explicitly.
        maintenance_interval: 3600,
        key_rotation: None,
        key_encryption_key: store.as_ref().map(|_| KeyEncryptionKey::generate()),
        store,
        ..Config::default()
    }
}

/// The backend the suite runs against: `TOKEN_SERVER_TEST_STORE` unset is SQLite (each
/// test its own in-memory database); `redis://HOST:PORT` runs every server of the suite on
/// that Redis, each test on its own emptied database number (scripts/test.sh starts the
/// redis-server); `redis+cluster://NODES` runs them on that cluster, emptied before each
/// test. Same tests, another store.
pub fn test_store() -> Option<StoreSpec> {
    let url = std::env::var(TEST_STORE_ENV)
        .ok()
        .filter(|u| !u.is_empty())?;
    let spec: StoreSpec = url
        .parse()
        .expect("TOKEN_SERVER_TEST_STORE is a --store SPEC");
    match spec {
        StoreSpec::Sqlite(_) => None,
        StoreSpec::Redis(url) => {
            // Test binaries run one after another; the tests of one binary in parallel.
            static NEXT_DB: AtomicU64 = AtomicU64::new(1);
            let db = NEXT_DB.fetch_add(1, Ordering::Relaxed);
            let base = url.trim_end_matches('/');
            let flushed = std::process::Command::new("redis-cli")
                .args(["-u", &format!("{base}/{db}"), "FLUSHDB"])
                .output()
                .expect("redis-cli runs");
            assert!(flushed.status.success(), "FLUSHDB on {base}/{db}");
            Some(StoreSpec::Redis(format!("{base}/{db}")))
        }
        StoreSpec::RedisCluster(ref url) => {
            // A cluster has one database: the suite runs one test at a time on it
            // (`--test-threads=1`, scripts/test.sh) and each test starts on an empty one.
            let nodes = url.trim_start_matches("redis+cluster://");
            for node in nodes.split(',').filter(|n| !n.is_empty()) {
                let flushed = std::process::Command::new("redis-cli")
                    .args(["-u", &format!("redis://{node}"), "FLUSHALL"])
                    .output()
                    .expect("redis-cli runs");
                assert!(flushed.status.success(), "FLUSHALL on {node}");
            }
            Some(spec)
        }
    }
}

/// For the tests of SQLite's own retention: a shared store expires entries by TTL in
/// real time, which a virtual clock does not advance (tests/shared_store.rs checks the TTLs).
pub fn sqlite_only(config: &mut Config) {
    config.store = None;
    config.key_encryption_key = None;
}

/// Names the backend of the suite (see [`test_store`]).
pub const TEST_STORE_ENV: &str = "TOKEN_SERVER_TEST_STORE";

/// `true` when the suite runs on a shared store, for the few tests about SQLite itself.
pub fn on_shared_store() -> bool {
    std::env::var(TEST_STORE_ENV).is_ok_and(|u| !u.is_empty() && !u.starts_with("sqlite:"))
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let clock = ManualClock::new(START);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut config = test_config(&clock, &logs);
        adjust(&mut config);
        if config.database != ":memory:" {
            // A test that names a database file is about the SQLite file itself.
            sqlite_only(&mut config);
        }
        Self::start_config(config, clock, logs).await
    }

    pub async fn start_config(
        config: Config,
        clock: Arc<ManualClock>,
        logs: Arc<Mutex<Vec<String>>>,
    ) -> Self {
        let server = Server::bind(config).await.expect("server starts");
        let addr = server.local_addr();
        let handle = server.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run_until(async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        TestServer {
            addr,
            origin: format!("http://localhost:{}", addr.port()),
            clock,
            handle,
            logs,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops accepting and waits until the server has shut down.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task ends cleanly");
        }
    }

    pub async fn send(&self, request: Request) -> Response {
        http::send(self.addr, &request)
            .await
            .expect("server answers")
    }

    pub async fn try_send(&self, request: Request) -> std::io::Result<Response> {
        http::send(self.addr, &request).await
    }

    pub async fn login_as(&self, username: &str, password: &str) -> Response {
        self.send(
            Request::post("/auth/login")
                .header("Origin", &self.origin)
                .json(&json!({ "username": username, "password": password })),
        )
        .await
    }

    /// A login request from the loopback address `source`.
    pub async fn login_from(&self, source: &str, username: &str, password: &str) -> Response {
        let request = Request::post("/auth/login")
            .header("Origin", &self.origin)
            .json(&json!({ "username": username, "password": password }));
        http::send_from(self.addr, source.parse().expect("an IP address"), &request)
            .await
            .expect("server answers")
    }

    /// Logs in as the demo user; panics unless it succeeds.
    pub async fn login(&self) -> Session {
        let r = self.login_as(USER, PASSWORD).await;
        assert_eq!(r.status, 200, "login failed: {}", r.text());
        Session::from_response(&r)
    }

    /// A refresh request as the browser layer sends it.
    pub fn refresh_request(&self, cookie: &str) -> Request {
        Request::post("/auth/refresh")
            .header("Origin", &self.origin)
            .header("X-Requested-With", "wasm-token-manager")
            .header("Sec-Fetch-Site", "same-origin")
            .header("Cookie", &format!("__Host-refresh={cookie}"))
    }

    pub async fn refresh(&self, cookie: &str) -> Response {
        self.send(self.refresh_request(cookie)).await
    }

    /// Refreshes and panics unless it succeeds.
    pub async fn refresh_ok(&self, cookie: &str) -> Session {
        let r = self.refresh(cookie).await;
        assert_eq!(r.status, 200, "refresh failed: {}", r.text());
        Session::from_response(&r)
    }

    /// A call of a `/test/*` switch as the demo page makes it: same origin, with the CSRF
    /// header (the switches are refused without it).
    pub fn switch_request(&self, path: &str) -> Request {
        Request::post(path)
            .header("Origin", &self.origin)
            .header("X-Requested-With", "wasm-token-manager")
    }

    pub fn logout_request(&self) -> Request {
        Request::post("/auth/logout")
            .header("Origin", &self.origin)
            .header("X-Requested-With", "wasm-token-manager")
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.send(
            Request::get("/api/me").header("Authorization", &format!("Bearer {access_token}")),
        )
        .await
    }

    pub async fn jwks(&self) -> Value {
        let r = self.send(Request::get("/.well-known/jwks.json")).await;
        assert_eq!(r.status, 200);
        r.json()
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What a login or refresh handed out.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub cookie: String,
    pub set_cookie: String,
    pub expires_in: u64,
}

impl Session {
    pub fn from_response(r: &Response) -> Self {
        let body = r.json();
        let set_cookie = r
            .header("set-cookie")
            .expect("a Set-Cookie header")
            .to_owned();
        Session {
            access_token: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            cookie: cookie_value(&set_cookie).expect("a refresh cookie value"),
            set_cookie,
            expires_in: body["expires_in"].as_u64().expect("expires_in"),
        }
    }
}

/// The value of `__Host-refresh` in a `Set-Cookie` header.
pub fn cookie_value(set_cookie: &str) -> Option<String> {
    let first = set_cookie.split(';').next()?;
    let (name, value) = first.split_once('=')?;
    (name.trim() == "__Host-refresh").then(|| value.trim().to_owned())
}

/// Asserts a JSON error answer with this status and `error` code.
#[track_caller]
pub fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "unexpected status; body {}", r.text());
    let body = r.json();
    assert_eq!(body["error"], code, "body {body}");
    assert!(body["error_description"].is_string(), "body {body}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "error without JSON content type"
    );
}

/// The decoded claims of a JWT, unverified (the tests check what the server signed).
pub fn claims(token: &str) -> Value {
    part(token, 1)
}

/// The decoded header of a JWT, unverified.
pub fn header(token: &str) -> Value {
    part(token, 0)
}

fn part(token: &str, i: usize) -> Value {
    use base64::Engine;
    let seg = token.split('.').nth(i).expect("a JWT segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(seg)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("tms-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
