//! Hostile and broken conditions: a failing database answers 500 JSON, odd requests get
//! JSON errors, and nothing takes the server down.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_failing_database_answers_500_server_error_json_and_the_server_keeps_running() {
    let dir = TempDir::new("dbfail");
    let db = dir.path().join("auth.sqlite");
    let server = TestServer::start_with(|c| c.database = db.to_string_lossy().into_owned()).await;
    let s = server.login().await;
    // Break the schema behind the server's back.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF; DROP TABLE refresh_tokens; DROP TABLE denied_jti;",
    )
    .unwrap();
    drop(conn);
    assert_error(&server.refresh(&s.cookie).await, 500, "server_error");
    assert_error(&server.login_as(USER, PASSWORD).await, 500, "server_error");
    assert_error(&server.me(&s.access_token).await, 500, "server_error");
    let r = server
        .send(
            server
                .logout_request()
                .header("Cookie", &format!("__Host-refresh={}", s.cookie)),
        )
        .await;
    assert_error(&r, 500, "server_error");
    assert!(server.log_text().contains("event=error"));
    // Still answering what does not need those tables.
    assert_eq!(
        server
            .send(Request::get("/.well-known/jwks.json"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn unknown_paths_get_json_404() {
    let server = TestServer::start().await;
    for path in [
        "/auth/nothing",
        "/api/other",
        "/.well-known/openid-configuration",
    ] {
        assert_error(&server.send(Request::get(path)).await, 404, "not_found");
    }
}

#[tokio::test]
async fn odd_requests_get_clean_errors() {
    let server = TestServer::start().await;
    let s = server.login().await;
    let odd = [
        server.refresh_request("\u{e9}\u{e9}"),
        server.refresh_request("a=b; __Host-refresh"),
        Request::post("/auth/login")
            .header("Content-Type", "application/json; charset=utf-8")
            .body(vec![0xff, 0xfe]),
        Request::post("/auth/login")
            .header("Content-Type", "application/json")
            .body("{\"username\":\"a\",\"password\":\"b\",\"x\":".repeat(50)),
        Request::post("/auth/login")
            .header("Content-Type", "application/json")
            .body(format!("{}1{}", "[".repeat(5000), "]".repeat(5000))),
        Request::post("/auth/login")
            .header("Content-Type", "application/json")
            .header("Content-Length", "99999999"),
        Request::post("/auth/login").json(&json!({"username": "u".repeat(1000), "password": "p"})),
        Request::get("/api/me").header("Authorization", &format!("Bearer {}", "x.".repeat(3000))),
    ];
    for request in odd {
        // Every one of these is answered; none is dropped or crashes the connection task.
        let r = server.send(request.clone()).await;
        let described = format!(
            "{} {} {:?} → {} {:?}",
            request.method,
            request.path,
            request.headers,
            r.status,
            r.text()
        );
        assert!((400..500).contains(&r.status), "{described}");
        assert!(!r.body.is_empty(), "{described}");
        assert!(r.json()["error"].is_string(), "{described}");
    }
    // The session the noise surrounded still works.
    let next = server.refresh_ok(&s.cookie).await;
    assert_eq!(server.me(&next.access_token).await.status, 200);
}

#[tokio::test]
async fn a_raw_garbage_connection_does_not_hurt_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    for garbage in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /auth/login HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
    ] {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        stream.shutdown().await.ok();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    }
    server.login().await;
}
