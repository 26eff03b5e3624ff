//! Reference server benchmark: refresh and `/api/me` throughput and latency on loopback,
//! at concurrency 1, 16 and 64, for RS256, ES256 and EdDSA signing keys.
//!
//! The server runs in-process on 127.0.0.1 with an in-memory database and logging off;
//! each worker holds one keep-alive connection and its own session (refresh family), so
//! every refresh is a real rotation. Prints a Markdown table. `--quick` for a short run.
//! Run it through `bench/server/run.sh`, which builds with optimisations.
//!
//! `--store SPEC` runs the same cells on another backend (`redis://…`, `redis+cluster://…`;
//! a key-encryption key is generated for the run); `bench/server/run.sh --stores` starts a
//! redis-server and a 3-master cluster and prints one table for SQLite, Redis and the cluster.
//! `--instances N` (with a shared store) runs N server instances behind nginx round robin
//! (Debian's, started from a temporary prefix as the tests start it) and sends the load there.
//!
//! `--aborted-logins` and `--login-throttle` run the login benchmarks of `logins.rs`
//! instead (each prints its own table).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use token_manager_server::{
    null_sink, Config, DemoUser, KeyEncryptionKey, Server, SigningAlgorithm, StoreSpec,
};

#[path = "../../server/tests/common/http.rs"]
mod http;
mod logins;
// nginx round robin in front of the instances, as the tests start it.
#[path = "../../server/tests/common/redis.rs"]
#[allow(dead_code)]
mod redis_procs;

use http::{Connection, Request};

const CONCURRENCY: [usize; 3] = [1, 16, 64];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Refresh,
    Me,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Refresh => "POST /auth/refresh",
            Endpoint::Me => "GET /api/me",
        }
    }
}

struct Worker {
    conn: Connection,
    cookie: String,
    access_token: String,
}

struct Cell {
    requests: usize,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

fn cookie_of(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

async fn login(addr: SocketAddr) -> Worker {
    let mut conn = Connection::open(addr).await.expect("connect");
    let r = conn
        .send(
            &Request::post("/auth/login")
                .json(&json!({"username": "bench", "password": "bench-password"})),
        )
        .await
        .expect("login answered");
    assert_eq!(r.status, 200, "login failed: {}", r.text());
    Worker {
        conn,
        cookie: cookie_of(r.header("set-cookie").expect("cookie")),
        access_token: r.json()["access_token"].as_str().expect("token").to_owned(),
    }
}

/// One request of `endpoint`; returns its latency.
async fn once(worker: &mut Worker, endpoint: Endpoint) -> Duration {
    let request = match endpoint {
        Endpoint::Refresh => Request::post("/auth/refresh")
            .header("X-Requested-With", "wasm-token-manager")
            .header("Cookie", &format!("__Host-refresh={}", worker.cookie)),
        Endpoint::Me => Request::get("/api/me")
            .header("Authorization", &format!("Bearer {}", worker.access_token)),
    };
    let started = Instant::now();
    let r = worker.conn.send(&request).await.expect("answered");
    let latency = started.elapsed();
    assert_eq!(r.status, 200, "{}: {}", endpoint.name(), r.text());
    if let Endpoint::Refresh = endpoint {
        worker.cookie = cookie_of(r.header("set-cookie").expect("rotated cookie"));
        worker.access_token = r.json()["access_token"].as_str().expect("token").to_owned();
    }
    latency
}

async fn run_cell(
    workers: Vec<Worker>,
    endpoint: Endpoint,
    warmup: Duration,
    measure: Duration,
) -> (Vec<Worker>, Cell) {
    let start = Instant::now();
    let warm_until = start + warmup;
    let end = warm_until + measure;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let latency = once(&mut w, endpoint).await;
                    if now >= warm_until {
                        samples.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                    }
                }
                (w, samples)
            })
        })
        .collect();
    let mut workers = Vec::new();
    let mut latencies_us = Vec::new();
    for t in tasks {
        let (w, s) = t.await.expect("worker");
        workers.push(w);
        latencies_us.extend(s);
    }
    let elapsed = Instant::now().saturating_duration_since(warm_until);
    latencies_us.sort_unstable();
    (
        workers,
        Cell {
            requests: latencies_us.len(),
            elapsed,
            latencies_us,
        },
    )
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted_us.len() as f64)).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

async fn bench_algorithm(
    alg: SigningAlgorithm,
    store: Option<&StoreSpec>,
    instances: usize,
    endpoints: &[Endpoint],
    warmup: Duration,
    measure: Duration,
) -> Vec<String> {
    let store_name = match store {
        None | Some(StoreSpec::Sqlite(_)) => "SQLite",
        Some(StoreSpec::Redis(_)) => "Redis",
        Some(StoreSpec::RedisCluster(_)) => "Redis Cluster",
    };
    let store_name = if instances > 1 {
        format!("{store_name}, {instances} instances behind nginx")
    } else {
        store_name.to_owned()
    };
    let config = Config {
        store: store.cloned(),
        // One KEK for the whole run: the keys of the previous algorithm stay in the store.
        key_encryption_key: store.map(|_| {
            static KEK: std::sync::OnceLock<KeyEncryptionKey> = std::sync::OnceLock::new();
            KEK.get_or_init(KeyEncryptionKey::generate).clone()
        }),
        listen: "127.0.0.1:0".parse().expect("addr"),
        // Instances behind one proxy are one service: one issuer (the default names each port).
        issuer: (instances > 1).then(|| "http://auth.bench".to_owned()),
        algorithm: alg,
        demo_users: vec![DemoUser::new("bench", "bench-password")],
        log: null_sink(),
        key_rotation: None,
        // 64 workers log in to one account at once from one address; this measures
        // refreshes, not the login throttle.
        login_max_delay: 0,
        ..Config::default()
    };
    // One after another: the first instance creates the signing key, the others load it.
    let mut stops = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..instances {
        let server = Server::bind(config.clone()).await.expect("server starts");
        addrs.push(server.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        stops.push((stop, task));
    }
    let dir = std::env::temp_dir().join(format!("bench-nginx-{}-{alg}", std::process::id()));
    let nginx = (instances > 1).then(|| {
        std::fs::create_dir_all(&dir).expect("nginx prefix");
        redis_procs::Nginx::start(&dir, &addrs)
    });
    let addr = match &nginx {
        Some(n) => SocketAddr::from(([127, 0, 0, 1], n.port)),
        None => addrs[0],
    };

    let max = CONCURRENCY.iter().copied().max().unwrap_or(1);
    let logins: Vec<_> = (0..max).map(|_| tokio::spawn(login(addr))).collect();
    let mut pool = Vec::new();
    for l in logins {
        pool.push(l.await.expect("login task"));
    }

    let mut rows = Vec::new();
    for &endpoint in endpoints {
        for c in CONCURRENCY {
            let rest = pool.split_off(c);
            let (back, cell) = run_cell(pool, endpoint, warmup, measure).await;
            pool = back;
            pool.extend(rest);
            let rps = cell.requests as f64 / cell.elapsed.as_secs_f64();
            rows.push(format!(
                "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} |",
                store_name,
                alg,
                endpoint.name(),
                c,
                rps,
                percentile_ms(&cell.latencies_us, 50.0),
                percentile_ms(&cell.latencies_us, 99.0),
            ));
            eprintln!("{}", rows.last().map(String::as_str).unwrap_or_default());
        }
    }
    drop(pool);
    drop(nginx);
    let _ = std::fs::remove_dir_all(&dir);
    for (stop, task) in stops {
        let _ = stop.send(());
        let _ = task.await;
    }
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // Cargo passes --bench to harness = false benches; nothing else is accepted.
    let mut store: Option<StoreSpec> = None;
    let mut instances = 1usize;
    // `--alg NAME` (repeatable) and `--endpoint refresh|me`: only those rows.
    let mut algs: Vec<SigningAlgorithm> = Vec::new();
    let mut endpoints = vec![Endpoint::Refresh, Endpoint::Me];
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--quick" | "--bench" | "--aborted-logins" | "--login-throttle" | "--no-header" => {}
            "--store" => match rest.next().map(|v| v.parse::<StoreSpec>()) {
                Some(Ok(spec)) => store = Some(spec),
                _ => {
                    eprintln!("--store needs a SPEC: sqlite:PATH, redis://… or redis+cluster://…");
                    std::process::exit(2);
                }
            },
            "--alg" => match rest.next().and_then(|v| {
                SigningAlgorithm::ALL
                    .into_iter()
                    .find(|a| a.to_string() == *v)
            }) {
                Some(alg) => algs.push(alg),
                None => {
                    eprintln!("--alg needs one of RS256, ES256, EdDSA");
                    std::process::exit(2);
                }
            },
            "--endpoint" => match rest.next().map(String::as_str) {
                Some("refresh") => endpoints = vec![Endpoint::Refresh],
                Some("me") => endpoints = vec![Endpoint::Me],
                _ => {
                    eprintln!("--endpoint needs refresh or me");
                    std::process::exit(2);
                }
            },
            "--instances" => match rest.next().map(|v| v.parse::<usize>()) {
                Some(Ok(n)) if n >= 1 => instances = n,
                _ => {
                    eprintln!("--instances needs a number of server instances (1 or more)");
                    std::process::exit(2);
                }
            },
            bad => {
                eprintln!(
                    "unknown argument {bad:?}; usage: server [--quick] [--store SPEC] \
                     [--instances N] [--alg NAME]... [--endpoint refresh|me] \
                     [--aborted-logins | --login-throttle]"
                );
                std::process::exit(2);
            }
        }
    }
    if instances > 1
        && !matches!(
            store,
            Some(StoreSpec::Redis(_) | StoreSpec::RedisCluster(_))
        )
    {
        eprintln!("--instances N needs a shared store: --store redis://… or redis+cluster://…");
        std::process::exit(2);
    }
    if args.iter().any(|a| a == "--aborted-logins") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        // One scenario per process: VmHWM is the process's own peak.
        let row = runtime.block_on(logins::aborted_logins(150, Duration::from_secs(2)));
        logins::aborted_logins_table(&[row]);
        return;
    }
    if args.iter().any(|a| a == "--login-throttle") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let measure = if quick {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(3)
        };
        let rows = runtime.block_on(logins::login_throttle(measure));
        logins::login_throttle_table(&rows, measure);
        return;
    }
    let (warmup, measure) = if quick {
        (Duration::from_millis(200), Duration::from_millis(800))
    } else {
        (Duration::from_secs(1), Duration::from_secs(5))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = Vec::new();
    if algs.is_empty() {
        algs = SigningAlgorithm::ALL.to_vec();
    }
    for alg in algs {
        rows.extend(runtime.block_on(bench_algorithm(
            alg,
            store.as_ref(),
            instances,
            &endpoints,
            warmup,
            measure,
        )));
    }
    if !args.iter().any(|a| a == "--no-header") {
        println!(
            "Reference server on loopback, in-process with the load generator ({cores} cores), \
             {:.1} s per cell after {:.1} s warm-up, keep-alive connections, one server instance \
             unless the row says otherwise; SQLite in memory, Redis on loopback.\n",
            measure.as_secs_f64(),
            warmup.as_secs_f64()
        );
        println!("| store | alg | endpoint | concurrency | req/s | p50 ms | p99 ms |");
        println!("|---|---|---|---:|---:|---:|---:|");
    }
    for row in rows {
        println!("{row}");
    }
}
