//! Every flag has an environment variable (`TOKEN_SERVER_` + its name), for container
//! deployments; a flag given on the command line wins. Against the binary.

mod common;

use common::binary::Binary;
use common::http::Request;
use serde_json::json;

fn login(origin: &str) -> Request {
    Request::post("/auth/login")
        .header("Origin", origin)
        .json(&json!({ "username": "demo", "password": "demo-password" }))
}

#[tokio::test]
async fn settings_come_from_the_environment_and_a_flag_overrides_its_variable() {
    let mut server = Binary::start(
        &[],
        &[
            ("TOKEN_SERVER_ACCESS_TTL", "7"),
            ("TOKEN_SERVER_AUDIENCE", "env-audience"),
            (
                "TOKEN_SERVER_ALLOWED_ORIGIN",
                "http://app.example,https://other.example",
            ),
            // The binary is started with `--alg ES256`: the flag wins.
            ("TOKEN_SERVER_ALG", "EdDSA"),
        ],
    );
    let r = server.send(&login("http://app.example"), "login").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["expires_in"], 7);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let me = server
        .send(
            &Request::get("/api/me").header("Authorization", &format!("Bearer {token}")),
            "me",
        )
        .await;
    assert_eq!(me.json()["aud"], "env-audience");
    let jwks = server
        .send(&Request::get("/.well-known/jwks.json"), "jwks")
        .await;
    assert_eq!(jwks.json()["keys"][0]["alg"], "ES256");
    // The list in the variable replaced the default origins, as the flag does.
    let r = server.send(&login("https://other.example"), "login").await;
    assert_eq!(r.status, 200);
    let origin = server.origin.clone();
    let r = server.send(&login(&origin), "login").await;
    assert_eq!(r.status, 403);
}

#[test]
fn a_bad_value_in_a_variable_is_refused_with_status_2_naming_the_flag() {
    let path = std::env::var("TOKEN_SERVER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_token-manager-server").to_owned());
    let out = std::process::Command::new(path)
        .env("TOKEN_SERVER_MAX_CONNECTIONS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-connections"), "{stderr}");
}
