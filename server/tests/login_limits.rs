//! The password-hashing limit holds against clients that go away: aborted logins never
//! run more hashes at once than there are permits, the queue of waiting logins is
//! bounded (503 + Retry-After beyond it), and a client that left is logged.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use token_manager_server::{AppHandle, PasswordHashStats};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Polls server-side state that the test's own actions are about to change (never a
/// refresh timer). Bounded, so a bug fails the test instead of hanging it.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

fn hashes(handle: &AppHandle) -> PasswordHashStats {
    handle.password_hashes()
}

/// Holds the server's hashes until dropped, so a failing assertion cannot leave blocking
/// threads parked (the runtime would wait for them forever).
struct Hold(AppHandle);

impl Hold {
    fn new(handle: &AppHandle) -> Self {
        handle.hold_password_hashes(true);
        Hold(handle.clone())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.hold_password_hashes(false);
    }
}

fn login_bytes(server: &TestServer, password: &str) -> Vec<u8> {
    let body = json!({ "username": USER, "password": password }).to_string();
    format!(
        "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nOrigin: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.origin,
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn aborted_logins_never_run_more_hashes_at_once_than_the_permits() {
    let server = TestServer::start_with(|c| {
        c.login_concurrency = 2;
        c.login_queue = 16;
        c.login_max_delay = 0;
    })
    .await;
    let hold = Hold::new(&server.handle);
    for k in 1..=8 {
        let mut conn = TcpStream::connect(server.addr).await.unwrap();
        conn.write_all(&login_bytes(&server, "wrong"))
            .await
            .unwrap();
        // Once the login is hashing or waiting for a permit, the client goes away.
        until("the login reached the hashing stage", || {
            hashes(&server.handle).arrived == k
        })
        .await;
        drop(conn);
    }
    // Every login still present holds a permit: none is waiting any more.
    until("no login waits", || hashes(&server.handle).waiting == 0).await;
    let held = hashes(&server.handle);
    assert!(held.in_flight <= 2, "{held:?}");
    until("every aborted login was logged", || {
        server.log_text().matches("event=client_gone").count() == 8
    })
    .await;
    drop(hold);
    until("the hashes finished", || {
        hashes(&server.handle).in_flight == 0
    })
    .await;
    let after = hashes(&server.handle);
    assert!(after.peak <= 2, "{after:?}");
    let logs = server.log_text();
    let line = logs
        .lines()
        .find(|l| l.contains("event=client_gone"))
        .unwrap();
    assert!(line.contains("path=\"/auth/login\""), "{line}");
    // The server still answers, and the permits came back.
    server.login().await;
}

#[tokio::test]
async fn logins_beyond_the_queue_bound_get_503_with_retry_after() {
    let server = std::sync::Arc::new(
        TestServer::start_with(|c| {
            c.login_concurrency = 1;
            c.login_queue = 2;
            c.login_max_delay = 0;
        })
        .await,
    );
    let hold = Hold::new(&server.handle);
    let mut admitted = Vec::new();
    for k in 1..=3 {
        let s = server.clone();
        admitted.push(tokio::spawn(
            async move { s.login_as(USER, PASSWORD).await },
        ));
        until("the login was admitted", || {
            hashes(&server.handle).arrived == k
        })
        .await;
    }
    until("one hashes, two wait", || {
        let h = hashes(&server.handle);
        h.in_flight == 1 && h.waiting == 2
    })
    .await;
    // Answered at once: it never waits behind the held hashes.
    let r = tokio::time::timeout(Duration::from_secs(10), server.login_as(USER, PASSWORD))
        .await
        .expect("the login beyond the queue is answered without waiting");
    assert_error(&r, 503, "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    drop(hold);
    for task in admitted {
        assert_eq!(task.await.unwrap().status, 200);
    }
    assert_eq!(hashes(&server.handle).peak, 1);
}
