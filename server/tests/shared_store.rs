//! Several server instances over one Redis: each is stateless apart from caches, so a
//! session started on one continues (or is revoked) on any other. Every test starts its
//! own redis-server; nothing is mocked.

mod common;

use std::sync::{Arc, Mutex};

use common::redis::{Nginx, RedisCluster, RedisServer};
use common::*;
use token_manager_server::{Config, KeyEncryptionKey, ManualClock, Server, StoreSpec};

/// `n` instances on one Redis, one virtual clock and one key-encryption key.
async fn instances(redis: &RedisServer, n: usize, adjust: impl Fn(&mut Config)) -> Vec<TestServer> {
    instances_on(StoreSpec::Redis(redis.url()), n, adjust).await
}

async fn instances_on(store: StoreSpec, n: usize, adjust: impl Fn(&mut Config)) -> Vec<TestServer> {
    let clock = ManualClock::new(START);
    let kek = KeyEncryptionKey::generate();
    let mut servers = Vec::new();
    for _ in 0..n {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut config = test_config(&clock, &logs);
        config.store = Some(store.clone());
        config.key_encryption_key = Some(kek.clone());
        // One service behind one origin: one issuer (the default names each port).
        config.issuer = Some("http://auth.test".into());
        adjust(&mut config);
        servers.push(TestServer::start_config(config, clock.clone(), logs).await);
    }
    servers
}

#[tokio::test]
async fn a_redis_store_without_a_key_encryption_key_refuses_to_start_and_says_why() {
    let redis = RedisServer::start();
    let clock = ManualClock::new(START);
    let logs = Arc::new(Mutex::new(Vec::new()));
    let mut config = test_config(&clock, &logs);
    config.store = Some(StoreSpec::Redis(redis.url()));
    config.key_encryption_key = None;
    let Err(err) = Server::bind(config).await else {
        panic!("a Redis store without a key-encryption key started");
    };
    assert!(
        err.to_string().contains("TOKEN_SERVER_KEY_ENCRYPTION_KEY"),
        "{err}"
    );
    assert_eq!(
        redis.cli(&["DBSIZE"]).as_deref(),
        Some("0"),
        "nothing stored"
    );
}

#[tokio::test]
async fn a_refresh_on_one_instance_and_a_replay_of_the_old_cookie_on_another_is_reuse() {
    let redis = RedisServer::start();
    let [a, b] = <[TestServer; 2]>::try_from(instances(&redis, 2, |_| {}).await)
        .ok()
        .unwrap();
    let s = a.login().await;
    let next = a.refresh_ok(&s.cookie).await;
    // Another instance continues the session...
    let after = b.refresh_ok(&next.cookie).await;
    assert_eq!(b.me(&after.access_token).await.status, 200);
    // ...and sees a replay of the first cookie, past the grace window, as theft.
    a.clock.advance(60);
    assert_error(&b.refresh(&s.cookie).await, 401, "invalid_grant");
    assert_error(&a.refresh(&after.cookie).await, 401, "invalid_grant");
    assert!(b.log_text().contains("reuse"), "{}", b.log_text());
}

#[tokio::test]
async fn a_logout_on_one_instance_denies_the_access_token_on_a_third() {
    let redis = RedisServer::start();
    let [a, b, c] = <[TestServer; 3]>::try_from(instances(&redis, 3, |_| {}).await)
        .ok()
        .unwrap();
    let s = a.login().await;
    assert_eq!(c.me(&s.access_token).await.status, 200);
    let r = b
        .send(
            b.logout_request()
                .header("Authorization", &format!("Bearer {}", s.access_token)),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_error(&c.me(&s.access_token).await, 401, "invalid_token");
    assert_error(&a.refresh(&s.cookie).await, 401, "invalid_grant");
}

#[tokio::test]
async fn fifty_concurrent_refreshes_of_one_cookie_over_three_instances_rotate_it_once() {
    let redis = RedisServer::start();
    let servers = instances(&redis, 3, |c| c.grace_replays = 100).await;
    let s = servers[0].login().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let server = &servers[i % 3];
        let (addr, request) = (server.addr, server.refresh_request(&s.cookie));
        tasks.push(tokio::spawn(async move {
            common::http::send(addr, &request).await.expect("answers")
        }));
    }
    let mut cookies = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        cookies.insert(Session::from_response(&r).cookie);
    }
    assert_eq!(cookies.len(), 1, "every caller got the same successor");
    let rotations: u64 = servers.iter().map(|s| s.handle.stats().rotations).sum();
    let replays: u64 = servers.iter().map(|s| s.handle.stats().grace_replays).sum();
    assert_eq!((rotations, replays), (1, 49));
}

/// The Redis key of a refresh token's index (`tm:t:` and the hex of its SHA-256).
fn index_key(cookie: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cookie)
        .expect("a refresh cookie is base64url");
    let hash = sha2::Sha256::digest(raw);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("tm:t:{hex}")
}

#[tokio::test]
async fn a_rotation_whose_index_write_was_lost_is_repaired_by_the_grace_replay_that_hands_it_out() {
    // A rotation writes the successor's index and the rotated family at the same time, on
    // a cluster on different nodes: if the index write fails (its node is gone for a
    // moment), the family already names the successor current while no index points at it.
    // The browser, which got an error, presents its old cookie again within the grace
    // window and receives the successor: that answer must make the successor usable.
    let redis = RedisServer::start();
    let [a, b] = <[TestServer; 2]>::try_from(instances(&redis, 2, |_| {}).await)
        .ok()
        .unwrap();
    let s = a.login().await;
    let next = a.refresh_ok(&s.cookie).await;
    let lost = index_key(&next.cookie);
    assert_eq!(redis.cli(&["DEL", &lost]).as_deref(), Some("1"));
    let replay = b.refresh_ok(&s.cookie).await;
    assert_eq!(
        replay.cookie, next.cookie,
        "the grace replay hands out the successor"
    );
    let after = a.refresh_ok(&replay.cookie).await;
    assert_eq!(b.me(&after.access_token).await.status, 200);
}

#[tokio::test]
async fn every_instance_publishes_the_same_keys_and_the_private_key_is_sealed_in_redis() {
    let redis = RedisServer::start();
    let servers = instances(&redis, 2, |_| {}).await;
    assert_eq!(servers[0].jwks().await, servers[1].jwks().await);
    let kid = servers[0].handle.current_kid();
    assert_eq!(servers[1].handle.current_kid(), kid);
    let key = format!("tm:{{keys}}:k:{kid}");
    let fields = redis.cli(&["HKEYS", &key]).unwrap();
    assert!(fields.contains("der"), "{fields}");
    // A PKCS#8 private key starts with SEQUENCE (0x30) and the version INTEGER 0; the
    // sealed form starts with its format byte and is 29 bytes longer (nonce and tag).
    let sealed = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "--no-raw",
            "HGET",
            &key,
            "der",
        ])
        .output()
        .unwrap()
        .stdout;
    let text = String::from_utf8_lossy(&sealed);
    assert!(text.starts_with("\"\\x01"), "{text}");
}

#[tokio::test]
async fn on_redis_sessions_denylist_and_throttle_counters_expire_by_their_own_ttl() {
    let redis = RedisServer::start();
    let servers = instances(&redis, 1, |c| c.refresh_ttl = 3600).await;
    let server = &servers[0];
    let s = server.login().await;
    // TTLs of the keys matching a pattern, read inside Redis (throttle keys hold NULs).
    let ttl = |pattern: &str| -> Vec<i64> {
        const TTLS: &str = "local o = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do \
                            table.insert(o, redis.call('TTL', k)) end return o";
        let out = redis.cli(&["EVAL", TTLS, "0", pattern]).unwrap();
        out.lines().filter_map(|l| l.trim().parse().ok()).collect()
    };
    // The family and its token index live as long as the refresh cookie (1 hour); no key
    // of a session is kept forever, so no sweep is needed.
    let session: Vec<i64> = ["tm:{*}:f", "tm:{*}:t:*", "tm:t:*"]
        .iter()
        .flat_map(|p| ttl(p))
        .collect();
    assert_eq!(session.len(), 3, "{session:?}");
    for t in session {
        assert!((3590..=3600).contains(&t), "ttl {t}");
    }
    let r = server
        .send(
            server
                .logout_request()
                .header("Authorization", &format!("Bearer {}", s.access_token)),
        )
        .await;
    assert_eq!(r.status, 204);
    // The denylist entry lasts until the access token's exp (900 s).
    let denied = ttl("tm:d:*");
    assert_eq!(denied.len(), 1);
    assert!((890..=900).contains(&denied[0]), "ttl {}", denied[0]);
    server.login_as(USER, "wrong").await;
    let counters = ttl("tm:{thr}:*");
    assert!(!counters.is_empty());
    assert!(counters.iter().all(|t| *t > 0), "{counters:?}");
}

#[tokio::test]
async fn a_key_rotation_on_one_instance_is_used_and_published_by_the_others() {
    let redis = RedisServer::start();
    let servers = instances(&redis, 2, |_| {}).await;
    let (a, b) = (&servers[0], &servers[1]);
    let s = a.login().await;
    let old = a.handle.current_kid();
    let new = a.handle.rotate_keys().unwrap();
    // B has not synced yet: its next grant names the new key, which it loads on demand.
    let next = b.refresh_ok(&s.cookie).await;
    assert_eq!(header(&next.access_token)["kid"], new.as_str());
    // A token A signs with the new key verifies on B; the old key's tokens still do.
    let from_a = a.refresh_ok(&next.cookie).await;
    assert_eq!(b.me(&from_a.access_token).await.status, 200);
    assert_eq!(b.me(&s.access_token).await.status, 200);
    // After B's periodic sync (run here by its maintenance), the JWKS agree.
    b.handle.run_maintenance().unwrap();
    assert_eq!(b.handle.current_kid(), new);
    assert_eq!(a.jwks().await, b.jwks().await);
    let kids: Vec<String> = b.jwks().await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids, [new, old]);
}

#[tokio::test]
async fn while_redis_is_down_refresh_and_login_answer_503_and_service_resumes_when_it_returns() {
    let dir = TempDir::new("redis-aof");
    let mut redis = RedisServer::start_persistent(dir.path());
    let servers = instances(&redis, 1, |_| {}).await;
    let server = &servers[0];
    let s = server.login().await;
    redis.stop();
    let r = server.refresh(&s.cookie).await;
    assert_error(&r, 503, "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = server.login_as(USER, PASSWORD).await;
    assert_error(&r, 503, "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    // Back, with its append-only file: the same cookie still works, no server restart.
    redis.restart();
    let next = server.refresh_ok(&s.cookie).await;
    assert_eq!(server.me(&next.access_token).await.status, 200);
    assert_eq!(server.login().await.expires_in, 900);
}

#[tokio::test]
async fn on_a_redis_cluster_the_same_code_rotates_once_detects_reuse_and_shares_keys() {
    let dir = TempDir::new("redis-cluster");
    let cluster = RedisCluster::start(dir.path());
    let spec: StoreSpec = cluster.url().parse().unwrap();
    let servers = instances_on(spec, 3, |c| c.grace_replays = 100).await;
    assert_eq!(servers[0].jwks().await, servers[2].jwks().await);
    let s = servers[0].login().await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let server = &servers[i % 3];
        let (addr, request) = (server.addr, server.refresh_request(&s.cookie));
        tasks.push(tokio::spawn(async move {
            common::http::send(addr, &request).await.expect("answers")
        }));
    }
    let mut cookies = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        cookies.insert(Session::from_response(&r).cookie);
    }
    assert_eq!(cookies.len(), 1, "every caller got the same successor");
    let next = cookies.into_iter().next().unwrap();
    let after = servers[1].refresh_ok(&next).await;
    assert_eq!(servers[2].me(&after.access_token).await.status, 200);
    servers[0].clock.advance(60);
    assert_error(&servers[2].refresh(&s.cookie).await, 401, "invalid_grant");
    assert_error(
        &servers[0].refresh(&after.cookie).await,
        401,
        "invalid_grant",
    );
    assert_error(
        &servers[1].me(&after.access_token).await,
        401,
        "invalid_token",
    );
}

#[tokio::test]
async fn three_instances_behind_nginx_serve_one_origin_and_a_killed_instance_signs_nobody_out() {
    let redis = RedisServer::start();
    let dir = TempDir::new("nginx");
    // nginx's port is known only once it runs; the origin check needs it up front, so the
    // front port is picked first and the instances allow it.
    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front_port = front.local_addr().unwrap().port();
    drop(front);
    let origin = format!("http://localhost:{front_port}");
    let allowed = origin.clone();
    let mut servers = instances(&redis, 3, move |c| {
        c.allowed_origins = vec![allowed.clone()]
    })
    .await;
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let nginx = Nginx::start_on(dir.path(), front_port, &addrs);
    let front: std::net::SocketAddr = format!("127.0.0.1:{}", nginx.port).parse().unwrap();
    let send = |r: Request| async move { common::http::send(front, &r).await.expect("answers") };
    let refresh = |cookie: &str| {
        Request::post("/auth/refresh")
            .header("Origin", &origin)
            .header("X-Requested-With", "wasm-token-manager")
            .header("Sec-Fetch-Site", "same-origin")
            .header("Cookie", &format!("__Host-refresh={cookie}"))
    };
    let login = send(
        Request::post("/auth/login")
            .header("Origin", &origin)
            .json(&serde_json::json!({ "username": USER, "password": PASSWORD })),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let mut s = Session::from_response(&login);
    for _ in 0..9 {
        let r = send(refresh(&s.cookie)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        s = Session::from_response(&r);
        let me = send(
            Request::get("/api/me").header("Authorization", &format!("Bearer {}", s.access_token)),
        )
        .await;
        assert_eq!(me.status, 200);
    }
    // Round robin: every instance rotated some of this one session's cookies.
    for server in &servers {
        assert!(server.handle.stats().rotations > 0, "an idle instance");
    }
    // An instance dies mid-session: nginx moves on, the session goes on.
    servers.remove(1).stop().await;
    for _ in 0..6 {
        let r = send(refresh(&s.cookie)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        s = Session::from_response(&r);
    }
    let r = send(
        Request::post("/auth/logout")
            .header("Origin", &origin)
            .header("X-Requested-With", "wasm-token-manager")
            .header("Authorization", &format!("Bearer {}", s.access_token)),
    )
    .await;
    assert_eq!(r.status, 204);
    for _ in 0..2 {
        let me = send(
            Request::get("/api/me").header("Authorization", &format!("Bearer {}", s.access_token)),
        )
        .await;
        assert_eq!(me.status, 401, "denied on every instance");
    }
}

/// The commands the server sends to Redis while `f` runs, as `MONITOR` (a real
/// `redis-cli monitor`) sees them: top-level commands only (not those a script runs), and
/// not the periodic key sync's or maintenance's scripts on the keys' set. Framed by two
/// `ECHO` markers, so nothing sent before or after is counted, whatever the timing.
async fn commands_during<F: std::future::Future<Output = ()>>(
    redis: &RedisServer,
    f: impl FnOnce() -> F,
) -> Vec<String> {
    use std::io::BufRead as _;
    let mut monitor = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "monitor"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli monitor starts");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = monitor.stdout.take().expect("monitor output");
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |marker: &str, seen: &mut Vec<String>| loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("redis-cli monitor reports every command");
        if line.contains(marker) {
            return;
        }
        seen.push(line);
    };
    // MONITOR answers OK once it is on; then the start marker must come through it.
    let mut ignored = Vec::new();
    wait_for("OK", &mut ignored);
    redis.cli(&["ECHO", "commands-during-start"]).expect("echo");
    wait_for("commands-during-start", &mut ignored);
    f().await;
    redis.cli(&["ECHO", "commands-during-end"]).expect("echo");
    let mut seen = Vec::new();
    wait_for("commands-during-end", &mut seen);
    let _ = monitor.kill();
    let _ = monitor.wait();
    let _ = reader.join();
    let mut commands: Vec<String> = seen
        .iter()
        .filter(|l| !l.contains(" lua]") && !l.contains("\"tm:{keys}:all\""))
        .filter_map(|l| l.split('"').nth(1).map(str::to_uppercase))
        .filter(|c| c != "ECHO" && c != "COMMAND")
        .collect();
    commands.sort();
    commands
}

/// A Bearer refresh on Redis is one index read, then the facts (with the DPoP binding)
/// and the key choice at once, then the compare-and-set rotation with the successor's
/// index and the account at once: 3 round trips. A separate read of the binding (as
/// before it moved into the facts) or any other extra command fails this.
#[tokio::test]
async fn a_rotating_refresh_on_redis_sends_three_round_trips_of_commands_and_no_more() {
    let redis = RedisServer::start();
    let server = instances(&redis, 1, |_| {}).await.remove(0);
    let session = server.login().await;
    // The first refresh loads the rotation script into Redis; the second is the steady state.
    let warm = server.refresh_ok(&session.cookie).await;
    let commands = commands_during(&redis, || async {
        let next = server.refresh_ok(&warm.cookie).await;
        assert_ne!(next.cookie, warm.cookie);
    })
    .await;
    // 1st round trip: GET of the token's index. 2nd: MULTI, HMGET of the family's fields
    // (its binding among them), GET of the token's entry, EXEC (one atomic read of the
    // family's slot), and EVALSHA of the key choice. 3rd: EVALSHA of the compare-and-set
    // rotation, HGETALL of the account, SET of the successor's index. Sorted.
    assert_eq!(
        commands,
        ["EVALSHA", "EVALSHA", "EXEC", "GET", "GET", "HGETALL", "HMGET", "MULTI", "SET"],
        "the commands of one refresh"
    );
    server.stop().await;
}
