//! Demo accounts seeded without a password on the command line (`ps` shows every flag):
//! from a `--demo-user-file` or from `TOKEN_SERVER_DEMO_USERS`, against the binary.

mod common;

use common::binary::Binary;
use common::http::Request;
use common::TempDir;
use serde_json::json;

async fn login(server: &mut Binary, username: &str, password: &str) -> u16 {
    let origin = server.origin.clone();
    server
        .send(
            &Request::post("/auth/login")
                .header("Origin", &origin)
                .json(&json!({ "username": username, "password": password })),
            "login",
        )
        .await
        .status
}

#[tokio::test]
async fn a_user_seeded_from_a_demo_user_file_can_log_in() {
    let dir = TempDir::new("demo-users");
    let file = dir.path().join("users");
    std::fs::write(
        &file,
        "# one account a line\nfile-user:file-password:File User:user,admin\n\nsecond:pw2\n",
    )
    .unwrap();
    let mut server = Binary::start(&["--demo-user-file", file.to_str().unwrap()], &[]);
    assert_eq!(login(&mut server, "file-user", "file-password").await, 200);
    assert_eq!(login(&mut server, "second", "pw2").await, 200);
    assert_eq!(login(&mut server, "file-user", "wrong").await, 401);
}

#[tokio::test]
async fn users_seeded_from_the_environment_can_log_in() {
    let mut server = Binary::start(
        &[],
        &[(
            "TOKEN_SERVER_DEMO_USERS",
            "env-user:env-password,other:pw:Other:admin,user\nthird:pw3",
        )],
    );
    assert_eq!(login(&mut server, "env-user", "env-password").await, 200);
    assert_eq!(login(&mut server, "other", "pw").await, 200);
    assert_eq!(login(&mut server, "third", "pw3").await, 200);
}
