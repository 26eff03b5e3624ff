//! Login benchmarks: what aborted logins cost the server (threads, memory, hashes at
//! once), and how many password guesses the login throttle lets an attacker make.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use token_manager_server::{null_sink, Config, DemoUser, ManualClock, Server, SigningAlgorithm};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::http::{Connection, Request};

/// `Threads`, `VmRSS` and `VmHWM` (KiB) of this process, from /proc/self/status.
fn proc_status() -> (u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"), field("VmHWM:"))
}

fn config(clock: Option<Arc<ManualClock>>) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        algorithm: SigningAlgorithm::Es256,
        demo_users: vec![DemoUser::new("bench", "bench-password")],
        log: null_sink(),
        key_rotation: None,
        ..Config::default()
    };
    if let Some(clock) = clock {
        config.clock = clock;
    }
    config
}

fn login_bytes(username: &str, password: &str) -> Vec<u8> {
    let body = json!({ "username": username, "password": password }).to_string();
    format!(
        "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `n` logins spread over `over`, each abandoned by its client 5 ms after it was sent.
/// Run first in a fresh process: `VmHWM` is the process's peak since it started.
pub async fn aborted_logins(n: usize, over: Duration) -> String {
    let mut config = config(None);
    // The hashing limit alone: the throttle would refuse most of these before hashing.
    config.login_max_delay = 0;
    let server = Server::bind(config).await.expect("server starts");
    let addr = server.local_addr();
    let handle = server.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let (threads_before, rss_before, _) = proc_status();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let (mut threads, mut rss) = (0, 0);
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let (t, r, _) = proc_status();
                threads = threads.max(t);
                rss = rss.max(r);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (threads, rss)
        })
    };
    let start = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(tokio::spawn(async move {
            if let Ok(mut conn) = TcpStream::connect(addr).await {
                let _ = conn.write_all(&login_bytes("bench", "wrong guess")).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
        tokio::time::sleep(over / n as u32).await;
    }
    for c in clients {
        let _ = c.await;
    }
    // Until every hash the aborted logins started has finished.
    loop {
        let h = handle.password_hashes();
        if h.in_flight == 0 && h.waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = start.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let (threads, rss) = sampler.await.unwrap_or((0, 0));
    let (_, _, hwm) = proc_status();
    let peak_hashes = handle.password_hashes().peak;
    let _ = stop.send(());
    let _ = task.await;
    format!(
        "| {n} in {:.1} s | {peak_hashes} | {threads_before} → {threads} | {:.0} → {:.0} | {:.0} | {:.1} |",
        over.as_secs_f64(),
        rss_before as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        drained.as_secs_f64()
    )
}

pub fn aborted_logins_table(rows: &[String]) {
    println!(
        "Aborted logins: each client sends a login and closes its connection 5 ms later; \
         server and clients in one process (threads and memory are the process's), \
         throttling off, argon2id m=19 MiB t=2 p=1.\n"
    );
    println!(
        "| aborted logins | most hashes at once | threads (before → peak) | RSS MiB (before → peak) | VmHWM MiB | until all hashes ended, s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
}

/// Who the attacker guesses, and from where.
#[derive(Clone, Copy)]
enum Attack {
    OneAccountOneAddress,
    ManyAccountsOneAddress,
    OneAccountManyAddresses,
}

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::OneAccountOneAddress => "one account, one address",
            Attack::ManyAccountsOneAddress => "many accounts, one address",
            Attack::OneAccountManyAddresses => "one account, many addresses",
        }
    }

    /// Account and client address of guess number `i`.
    fn target(self, i: u32) -> (String, IpAddr) {
        let spread =
            |i: u32| IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8));
        match self {
            Attack::OneAccountOneAddress => {
                ("bench".into(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)))
            }
            Attack::ManyAccountsOneAddress => {
                (format!("user{i}"), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)))
            }
            Attack::OneAccountManyAddresses => ("bench".into(), spread(i % 60_000)),
        }
    }
}

async fn guess(addr: SocketAddr, username: &str, from: IpAddr) -> (u16, u64) {
    let request = Request::post("/auth/login")
        .json(&json!({ "username": username, "password": "a wrong guess" }));
    let mut conn = Connection::open_from(addr, from).await.expect("connect");
    let r = conn.send(&request).await.expect("answered");
    let retry = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (r.status, retry)
}

async fn start(config: Config) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let server = Server::bind(config).await.expect("server starts");
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Throttle off: guesses per real second with `clients` parallel attackers.
async fn unthrottled_rate(attack: Attack, clients: u32, measure: Duration) -> f64 {
    let mut config = config(None);
    config.login_max_delay = 0;
    let (addr, stop) = start(config).await;
    let deadline = Instant::now() + measure;
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(async move {
            let (mut checked, mut i) = (0u32, c);
            while Instant::now() < deadline {
                let (user, from) = attack.target(i);
                if guess(addr, &user, from).await.0 == 401 {
                    checked += 1;
                }
                i += clients;
            }
            checked
        }));
    }
    let mut checked = 0;
    for t in tasks {
        checked += t.await.unwrap_or(0);
    }
    let _ = stop.send(());
    f64::from(checked) / measure.as_secs_f64()
}

/// Throttle on, default policy: an attacker who retries the moment `Retry-After` allows,
/// over one virtual hour. Returns (guesses checked in the first minute, in the hour).
async fn throttled_guesses(attack: Attack) -> (u32, u32, String) {
    let clock = ManualClock::new(1_700_000_000);
    let (addr, stop) = start(config(Some(clock.clone()))).await;
    // The real user signed in from their usual address before the attack.
    let victim_home = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let home = Request::post("/auth/login")
        .json(&json!({ "username": "bench", "password": "bench-password" }));
    let sign_in = |from: IpAddr| {
        let home = home.clone();
        async move {
            let mut conn = Connection::open_from(addr, from).await.expect("connect");
            let r = conn.send(&home).await.expect("answered");
            (r.status, r.header("retry-after").map(str::to_owned))
        }
    };
    assert_eq!(sign_in(victim_home).await.0, 200);
    let start_at = 1_700_000_000u64;
    let (mut first_minute, mut hour, mut i) = (0, 0, 0);
    let now = || clock_now(&clock);
    while now() < start_at + 3600 {
        let (user, from) = attack.target(i);
        let (status, retry) = guess(addr, &user, from).await;
        match status {
            401 => {
                hour += 1;
                if now() < start_at + 60 {
                    first_minute += 1;
                }
                i += 1;
            }
            429 => clock.advance(retry.max(1)),
            other => panic!("unexpected status {other}"),
        }
    }
    // What the attack costs the real user at its end.
    let home_status = sign_in(victim_home).await;
    let away = sign_in(IpAddr::V4(Ipv4Addr::new(127, 0, 3, 3))).await;
    let describe = |(status, retry): (u16, Option<String>)| match status {
        200 => "signs in".to_owned(),
        429 => format!("waits {} s", retry.unwrap_or_default()),
        other => format!("HTTP {other}"),
    };
    let victim = format!(
        "from home: {}; from a new address: {}",
        describe(home_status),
        describe(away)
    );
    let _ = stop.send(());
    (first_minute, hour, victim)
}

fn clock_now(clock: &ManualClock) -> u64 {
    use token_manager_server::Clock;
    clock.now()
}

pub async fn login_throttle(measure: Duration) -> Vec<String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let mut rows = Vec::new();
    for attack in [
        Attack::OneAccountOneAddress,
        Attack::ManyAccountsOneAddress,
        Attack::OneAccountManyAddresses,
    ] {
        let before = unthrottled_rate(attack, cores * 2, measure).await;
        let (minute, hour, victim) = throttled_guesses(attack).await;
        rows.push(format!(
            "| {} | {:.1} | {:.0} | {minute} | {hour} | {:.4} | {victim} |",
            attack.name(),
            before,
            before * 3600.0,
            f64::from(hour) / 3600.0
        ));
        eprintln!("{}", rows.last().map(String::as_str).unwrap_or_default());
    }
    rows
}

pub fn login_throttle_table(rows: &[String], measure: Duration) {
    println!(
        "Password guesses an attacker gets checked. Throttle off: real rate with 2 × cores \
         parallel clients over {:.0} s (the hashing limit is all that slows it). Throttle on \
         (defaults, --login-max-delay 300): one client retrying the moment Retry-After allows, \
         over one hour of virtual time; many addresses are 127.1.x.y.\n",
        measure.as_secs_f64()
    );
    println!(
        "| attack | off: guesses/s | off: guesses/hour | on: first minute | on: hour | on: guesses/s | real user after the hour |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for row in rows {
        println!("{row}");
    }
}
