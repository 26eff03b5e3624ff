//! Login benchmarks: what aborted logins cost the server (threads, memory, hashes at
//! once), and how many password guesses the login throttle lets an attacker make.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use token_manager_server::{null_sink, Config, DemoUser, ManualClock, Server, SigningAlgorithm};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

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
