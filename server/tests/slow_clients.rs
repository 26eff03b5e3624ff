//! Slow clients over real loopback TCP: a body that trickles past the body timeout, an idle
//! keep-alive connection, hundreds of connections trickling bodies, and connections beyond
//! the cap. Timeouts are set small through `Config::connection_limits`; every wait is
//! bounded by a limit many times the configured timeout, so a loaded machine only slows
//! the tests down.

mod common;

use std::io;
use std::time::{Duration, Instant};

use common::http::Connection;
use common::*;
use serde_json::json;
use token_manager_server::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something the server must do within a much shorter timeout.
const BOUND: Duration = Duration::from_secs(10);

async fn start(limits: ConnectionLimits) -> TestServer {
    TestServer::start_with(|c| {
        c.connection_limits = limits;
        c.test_switches = true;
    })
    .await
}

/// Request headers of a login whose body of `len` bytes is yet to come.
fn slow_login_head(server: &TestServer, len: usize) -> String {
    format!(
        "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nOrigin: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
        server.origin
    )
}

/// Reads until the server closes the connection; the bytes received, or the reset.
async fn read_until_closed(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await?;
    Ok(out)
}

/// True once the server has closed `stream` (EOF or reset); false while it is open.
fn closed_by_server(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return true,
            // An early answer (a 408 or 503) before the close.
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[tokio::test]
async fn a_body_trickling_past_the_body_timeout_gets_408_and_its_connection_closed() {
    let server = start(ConnectionLimits {
        body_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(slow_login_head(&server, 200).as_bytes())
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 50 ms: a 200-byte body would take 10 s.
    let trickle = tokio::spawn(async move {
        for _ in 0..200 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let started = Instant::now();
    let mut received = Vec::new();
    let outcome = tokio::time::timeout(BOUND, reader.read_to_end(&mut received)).await;
    trickle.abort();
    assert!(
        outcome.is_ok(),
        "the connection was still open after {BOUND:?} (body timeout 500 ms)"
    );
    let text = String::from_utf8_lossy(&received);
    // A reset may swallow the 408 (the server closes with bytes unread); it must not be
    // anything else.
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer {text:?}"
    );
    assert!(started.elapsed() < BOUND);
    // The server still serves.
    server.jwks().await;
}

#[tokio::test]
async fn the_body_timeout_answers_408_with_a_json_error() {
    let server = start(ConnectionLimits {
        body_timeout: Duration::from_millis(300),
        ..ConnectionLimits::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Part of the body, then nothing: the server reads what came, then times out.
    stream
        .write_all(format!("{}{{\"user", slow_login_head(&server, 100)).as_bytes())
        .await
        .unwrap();
    let received = tokio::time::timeout(BOUND, read_until_closed(&mut stream))
        .await
        .expect("closed within the bound")
        .expect("closed cleanly: the server read everything that was sent");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.contains("\"error\":\"invalid_request\""), "{text}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(ConnectionLimits {
        idle_timeout: Duration::from_millis(300),
        ..ConnectionLimits::default()
    })
    .await;
    let mut conn = Connection::open(server.addr).await.unwrap();
    let r = conn
        .send(&Request::get("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let mut stream = conn.into_stream();
    let started = Instant::now();
    let outcome = tokio::time::timeout(BOUND, read_until_closed(&mut stream)).await;
    assert!(
        outcome.is_ok(),
        "an idle connection was still open after {BOUND:?} (idle timeout 300 ms; the header \
         timeout is 30 s)"
    );
    assert!(started.elapsed() < BOUND);
}

#[tokio::test]
async fn a_keep_alive_connection_in_use_is_not_closed_as_idle() {
    let server = start(ConnectionLimits {
        idle_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    })
    .await;
    let mut conn = Connection::open(server.addr).await.unwrap();
    // Requests 400 ms apart for well over the idle timeout, on one connection.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let r = conn
            .send(&Request::get("/.well-known/jwks.json"))
            .await
            .expect("the busy connection stays open");
        assert_eq!(r.status, 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

#[tokio::test]
async fn under_300_slow_connections_a_jwks_request_still_answers_and_the_cap_holds() {
    const CAP: usize = 100;
    const SLOW: usize = 300;
    let server = start(ConnectionLimits {
        // Long, so the cap (not the body timeout) is what makes room.
        body_timeout: Duration::from_secs(60),
        max_connections: CAP,
        ..ConnectionLimits::default()
    })
    .await;
    let head = slow_login_head(&server, 1000);
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        // Headers and the first byte of a 1000-byte body, then silence.
        stream
            .write_all(format!("{head}{{").as_bytes())
            .await
            .unwrap();
        slow.push(stream);
    }
    // A legitimate client, on a fresh connection, while all 300 are still trickling.
    let started = Instant::now();
    let r = tokio::time::timeout(
        BOUND,
        server.try_send(Request::get("/.well-known/jwks.json")),
    )
    .await
    .expect("the JWKS answered within the bound")
    .expect("the JWKS request was answered, not refused");
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < BOUND);
    // The oldest slow connections were closed to make room: the server never held more
    // than the cap (plus the few evictions that may be under way).
    let deadline = Instant::now() + BOUND;
    loop {
        let open = slow.iter().filter(|s| !closed_by_server(s)).count();
        if open <= CAP {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} of {SLOW} slow connections still open with a cap of {CAP}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.log_text().contains("event=connection_evicted"));
}

#[tokio::test]
async fn beyond_the_cap_busy_connections_are_served_and_a_new_one_is_refused_quickly() {
    const CAP: usize = 4;
    let server = start(ConnectionLimits {
        max_connections: CAP,
        ..ConnectionLimits::default()
    })
    .await;
    let s = server.login().await;
    let r = server
        .send(
            server
                .switch_request("/test/delay")
                .json(&json!({"ms": 3000})),
        )
        .await;
    assert_eq!(r.status, 200);
    // CAP refreshes, each held 3 s in its handler: every connection is busy.
    let busy: Vec<_> = (0..CAP)
        .map(|_| {
            let request = server.refresh_request(&s.cookie);
            let addr = server.addr;
            tokio::spawn(async move { common::http::send(addr, &request).await })
        })
        .collect();
    let deadline = Instant::now() + BOUND;
    while server.handle.stats().refresh_requests < CAP as u64 {
        assert!(Instant::now() < deadline, "the refreshes never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // One more: nothing can be evicted, so it is refused at once.
    let started = Instant::now();
    let refused = server
        .try_send(Request::get("/.well-known/jwks.json"))
        .await;
    let took = started.elapsed();
    match refused {
        Ok(r) => assert_error(&r, 503, "temporarily_unavailable"),
        // A reset may swallow the 503: the server closes without reading the request.
        Err(e) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
            ),
            "{e}"
        ),
    }
    assert!(
        took < Duration::from_millis(3000),
        "refused only after {took:?}, not before the busy requests ended"
    );
    // Every busy connection is answered.
    for task in busy {
        let r = task.await.unwrap().expect("the busy refresh was answered");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(server.log_text().contains("event=connection_refused"));
    // And with the slots free again, new connections are served.
    server.jwks().await;
}
