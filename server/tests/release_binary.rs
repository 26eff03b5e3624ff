//! Hostile request data against the server *binary*, as deployed: multibyte characters at
//! every position around every cut point of paths and header values, and a handler that
//! panics. Each must be answered, and the process must still be serving afterwards.
//!
//! `cargo test` runs this against the binary of the same build (debug). `npm test`
//! (scripts/test.sh) also builds the release binary (`--profile server-release`) and runs
//! this file against it with `TOKEN_SERVER_BIN=target/server-release/token-manager-server`:
//! before the fix one such request made `panic = "abort"` kill that process.

mod common;

use common::binary::Binary;
use common::http::Request;
use serde_json::json;

/// One character of each UTF-8 width.
const WIDE: [char; 3] = ['\u{e9}', '\u{20ac}', '\u{1f600}'];

/// `prefix` ASCII bytes, then one `c`, then a tail: `c` straddles, starts or ends at every
/// byte offset from `cut - 4` to `cut + 1`.
fn straddling(cut: usize) -> Vec<(usize, char)> {
    let mut out = Vec::new();
    for c in WIDE {
        for prefix in cut.saturating_sub(4)..=cut + 1 {
            out.push((prefix, c));
        }
    }
    out
}

#[tokio::test]
async fn multibyte_paths_around_the_access_log_cut_are_answered_and_the_server_keeps_serving() {
    let mut server = Binary::start(&[], &[]);
    // The access log keeps 200 bytes of the path; the leading `/` counts.
    for (prefix, c) in straddling(200) {
        for base in ["/", "/pkg/", "/test/", "/auth/"] {
            let filler = "a".repeat(prefix.saturating_sub(base.len()));
            let path = format!("{base}{filler}{c}{c}tail?q={c}");
            let what = format!("GET {base}… with {c:?} at byte {prefix}");
            let r = server.send(&Request::get(&path), &what).await;
            assert!(r.status == 404 || r.status == 405, "{what}: {}", r.status);
        }
    }
    server.assert_serving("multibyte paths").await;
}

#[tokio::test]
async fn multibyte_header_values_of_every_length_are_answered_and_the_server_keeps_serving() {
    let mut server = Binary::start(&[], &[]);
    for (prefix, c) in straddling(200)
        .into_iter()
        .chain(straddling(256))
        .chain(straddling(1024))
    {
        let value = format!("{}{c}{c}", "a".repeat(prefix));
        let what = format!("headers with {c:?} at byte {prefix}");
        for (name, request) in [
            ("Origin", Request::post("/auth/refresh")),
            ("Cookie", Request::post("/auth/refresh")),
            ("X-Requested-With", Request::post("/auth/logout")),
            ("Authorization", Request::get("/api/me")),
            ("Sec-Fetch-Site", Request::post("/auth/refresh")),
            ("Content-Type", Request::post("/auth/login")),
            ("User-Agent", Request::get("/.well-known/jwks.json")),
        ] {
            let header_value = match name {
                "Cookie" => format!("__Host-refresh={value}"),
                "Authorization" => format!("Bearer {value}"),
                _ => value.clone(),
            };
            let r = server
                .send(
                    &request.header(name, &header_value),
                    &format!("{name} {what}"),
                )
                .await;
            assert!(r.status < 500, "{name} {what}: {} {}", r.status, r.text());
        }
    }
    server.assert_serving("multibyte header values").await;
}

#[tokio::test]
async fn multibyte_credentials_around_the_length_caps_are_answered_and_the_server_keeps_serving() {
    // Dozens of failed logins from one address: the login throttle would answer 429 long
    // before the cut points are all tried. This test is about the cuts, so it is off.
    let mut server = Binary::start(&["--login-max-delay", "0"], &[]);
    let origin = server.origin.clone();
    // The username cap is 256 bytes, the password cap 1024.
    for (field, cut) in [("username", 256), ("password", 1024)] {
        for (prefix, c) in straddling(cut) {
            let value = format!("{}{c}", "a".repeat(prefix));
            let body = if field == "username" {
                json!({ "username": value, "password": "x" })
            } else {
                json!({ "username": "demo", "password": value })
            };
            let what = format!("login with {c:?} at byte {prefix} of the {field}");
            let r = server
                .send(
                    &Request::post("/auth/login")
                        .header("Origin", &origin)
                        .json(&body),
                    &what,
                )
                .await;
            assert!(r.status == 400 || r.status == 401, "{what}: {}", r.status);
        }
    }
    server.assert_serving("multibyte credentials").await;
}

#[tokio::test]
async fn a_panicking_handler_answers_500_as_json_and_the_server_keeps_serving() {
    let mut server = Binary::start(&[], &[]);
    let origin = server.origin.clone();
    for round in 0..3 {
        let r = server
            .send(
                &Request::post("/test/panic")
                    .header("Origin", &origin)
                    .header("X-Requested-With", "wasm-token-manager")
                    .json(&json!({})),
                "POST /test/panic",
            )
            .await;
        common::assert_error(&r, 500, "server_error");
        server.assert_serving(&format!("panic {round}")).await;
    }
    // Sessions made before and after a panic keep working.
    let login = server
        .send(
            &Request::post("/auth/login")
                .header("Origin", &origin)
                .json(&json!({"username": "demo", "password": "demo-password"})),
            "login",
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
}
