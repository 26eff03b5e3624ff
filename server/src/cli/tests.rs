//! The command line: parsing, environment variables, defaults and refusals.

use super::*;
use crate::config::DEMO_USERS_ENV;
use crate::store::KEK_ENV;
use crate::upstream::UPSTREAM_CLIENT_SECRET_ENV;

fn parse(args: &[&str]) -> Result<Config, String> {
    match Config::from_args(args.iter().map(|s| s.to_string()))? {
        Command::Run(c) => Ok(*c),
        Command::Help(_) => Err("help".into()),
    }
}

#[test]
fn no_flags_give_the_documented_defaults() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.access_ttl, 900);
    assert_eq!(c.refresh_ttl, 604_800);
    assert_eq!(c.grace, 10);
    assert_eq!(c.algorithm, SigningAlgorithm::Rs256);
    assert!(!c.test_switches);
    assert_eq!(c.session_max_age, 2_592_000);
    assert_eq!(c.grace_replays, 10);
    assert_eq!((c.login_concurrency, c.login_queue), (0, 64));
    assert_eq!(c.login_max_delay, 300);
    let limits = c.connection_limits;
    assert_eq!(limits.header_timeout.as_secs(), 30);
    assert_eq!(limits.body_timeout.as_secs(), 10);
    assert_eq!(limits.idle_timeout.as_secs(), 30);
    assert_eq!(limits.max_connections, 1024);
}

#[test]
fn session_and_login_limit_flags_are_parsed_and_checked() {
    let c = parse(&[
        "--session-max-age",
        "3600",
        "--grace-replays=3",
        "--login-concurrency",
        "2",
        "--login-queue",
        "5",
        "--login-max-delay",
        "0",
    ])
    .unwrap();
    assert_eq!(c.session_max_age, 3600);
    assert_eq!(c.grace_replays, 3);
    assert_eq!((c.login_concurrency, c.login_queue), (2, 5));
    assert_eq!(c.login_max_delay, 0);
    for args in [
        &["--session-max-age", "0"][..],
        &["--grace-replays", "-1"],
        &["--login-queue", "many"],
        &["--login-concurrency", "1000000"],
        &["--login-max-delay"],
    ] {
        assert!(parse(args).is_err(), "{args:?} should be refused");
    }
}

#[test]
fn connection_limit_flags_are_parsed_and_checked() {
    let c = parse(&[
        "--header-timeout",
        "5",
        "--body-timeout=3",
        "--idle-timeout",
        "7",
        "--max-connections",
        "200",
    ])
    .unwrap();
    let limits = c.connection_limits;
    assert_eq!(limits.header_timeout.as_secs(), 5);
    assert_eq!(limits.body_timeout.as_secs(), 3);
    assert_eq!(limits.idle_timeout.as_secs(), 7);
    assert_eq!(limits.max_connections, 200);
    for args in [
        &["--body-timeout", "0"][..],
        &["--idle-timeout", "100000"],
        &["--header-timeout", "x"],
        &["--max-connections", "0"],
        &["--max-connections", "-5"],
    ] {
        assert!(parse(args).is_err(), "{args:?} should be refused");
    }
}

#[test]
fn every_flag_is_parsed() {
    let c = parse(&[
        "--listen",
        "0.0.0.0:9000",
        "--database",
        "x.db",
        "--access-ttl",
        "5",
        "--refresh-ttl=60",
        "--grace",
        "2",
        "--allowed-origin",
        "https://app.example/",
        "--allowed-origin",
        "http://localhost:3000",
        "--demo-user",
        "demo:pw",
        "--demo-user",
        "alice:secret:Alice Liddell:admin, user",
        "--alg",
        "EdDSA",
        "--key-rotation",
        "0",
        "--issuer",
        "https://id.example",
        "--audience",
        "api",
        "--www",
        "w",
        "--pkg",
        "p",
        "--maintenance-interval",
        "7",
        "--test-switches",
    ])
    .unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.database, "x.db");
    assert_eq!((c.access_ttl, c.refresh_ttl, c.grace), (5, 60, 2));
    assert_eq!(
        c.allowed_origins,
        ["https://app.example", "http://localhost:3000"]
    );
    assert_eq!(c.demo_users[0], DemoUser::new("demo", "pw"));
    assert_eq!(c.demo_users[1].name, "Alice Liddell");
    assert_eq!(c.demo_users[1].roles, ["admin", "user"]);
    assert_eq!(c.algorithm, SigningAlgorithm::EdDsa);
    assert_eq!(c.key_rotation, None);
    assert_eq!(c.issuer.as_deref(), Some("https://id.example"));
    assert_eq!(c.audience, "api");
    assert_eq!(c.maintenance_interval, 7);
    assert!(c.test_switches);
}

#[test]
fn bad_flags_are_errors_not_panics() {
    for args in [
        &["--listen", "nowhere"][..],
        &["--access-ttl", "0"],
        &["--grace", "-1"],
        &["--alg", "HS256"],
        &["--alg", "none"],
        &["--demo-user", "nopassword"],
        &["--allowed-origin", "app.example"],
        &["--allowed-origin", "https://app.example/path"],
        &["--database"],
        &["--frobnicate"],
    ] {
        assert!(parse(args).is_err(), "{args:?} should be refused");
    }
}

#[test]
fn the_environment_adds_to_the_flags_and_is_read_only_when_set() {
    let env = |v: &'static str| {
        move |name: &str| (name == DEMO_USERS_ENV).then(|| std::ffi::OsString::from(v))
    };
    let args = || ["--demo-user".to_owned(), "demo:pw".to_owned()];
    let Command::Run(c) = Config::from_args_and_env(args(), env("alice:secret")).unwrap() else {
        panic!("expected run");
    };
    let names: Vec<&str> = c.demo_users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["demo", "alice"]);
    let Command::Run(c) = Config::from_args_and_env(args(), |_| None).unwrap() else {
        panic!("expected run");
    };
    assert_eq!(c.demo_users.len(), 1);
    assert!(Config::from_args_and_env(args(), env("broken")).is_err());
}

#[test]
fn demo_user_file_flag_reads_the_file_and_a_missing_file_is_an_error() {
    let dir = std::env::temp_dir().join(format!("tms-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users");
    std::fs::write(&path, "demo:pw\nalice:secret\n").unwrap();
    let c = parse(&[
        "--demo-user-file",
        path.to_str().unwrap(),
        "--demo-user",
        "bob:b",
    ])
    .unwrap();
    let names: Vec<&str> = c.demo_users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["demo", "alice", "bob"]);
    let missing = dir.join("missing");
    assert!(parse(&["--demo-user-file", missing.to_str().unwrap()]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_demo_user_flag_is_an_error_that_does_not_quote_it() {
    let e = parse(&["--demo-user", "hunter2-no-colon"]).unwrap_err();
    assert!(e.contains("--demo-user"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn help_is_a_command_that_lists_every_flag_with_its_environment_variable() {
    let Ok(Command::Help(text)) = Config::from_args(["--help".to_owned()]) else {
        panic!("expected help");
    };
    for flag in [
        "--listen",
        "--max-connections",
        "--test-switches",
        "--demo-user-file",
    ] {
        assert!(text.contains(flag), "{flag}");
    }
    assert!(text.contains("TOKEN_SERVER_LISTEN") && text.contains("TOKEN_SERVER_DEMO_USERS"));
    assert!(matches!(
        Config::from_args(["-h".to_owned()]),
        Ok(Command::Help(_))
    ));
}

#[test]
fn a_flag_given_twice_takes_its_last_value_and_repeatable_ones_collect() {
    let c = parse(&[
        "--grace",
        "2",
        "--grace=3",
        "--test-switches",
        "--test-switches",
        "--allowed-origin",
        "http://a.example",
        "--allowed-origin",
        "http://b.example",
    ])
    .unwrap();
    assert_eq!(c.grace, 3);
    assert!(c.test_switches);
    assert_eq!(c.allowed_origins, ["http://a.example", "http://b.example"]);
}

#[test]
fn the_dpop_flags_parse_and_default_to_off() {
    let c = parse(&[]).unwrap();
    assert_eq!(
        (
            c.dpop_iat_window,
            c.dpop_nonce,
            c.dpop_required,
            c.public_scheme.as_str()
        ),
        (60, false, false, "http")
    );
    let c = parse(&[
        "--dpop-iat-window",
        "30",
        "--dpop-nonce",
        "--dpop-required",
        "--public-scheme",
        "https",
    ])
    .unwrap();
    assert_eq!(
        (
            c.dpop_iat_window,
            c.dpop_nonce,
            c.dpop_required,
            c.public_scheme.as_str()
        ),
        (30, true, true, "https")
    );
    assert!(parse(&["--public-scheme", "ftp"]).is_err());
    assert!(parse(&["--dpop-iat-window", "0"]).is_err());
}

#[test]
fn server_readme_shows_the_current_help_output() {
    let Ok(Command::Help(text)) = Config::from_args(["--help".to_owned()]) else {
        panic!("expected help");
    };
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(&format!("```text\n{text}```")),
        "server/README.md's --help block is stale; paste:\n{text}"
    );
}
#[test]
fn the_store_and_its_key_encryption_key_come_from_flags_or_the_environment() {
    let kek = KeyEncryptionKey::generate().to_base64();
    let env = |store: &'static str, kek: String| {
        move |name: &str| match name {
            STORE_ENV => Some(store.into()),
            KEK_ENV => Some(kek.clone().into()),
            _ => None,
        }
    };
    let run = |args: &[&str], env: &dyn Fn(&str) -> Option<std::ffi::OsString>| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match Config::from_args_and_env(args, env)? {
            Command::Run(c) => Ok(*c),
            Command::Help(_) => Err("help".to_owned()),
        }
    };
    let c = run(&[], &env("redis://127.0.0.1:6379", kek.clone())).unwrap();
    assert_eq!(
        c.store,
        Some(StoreSpec::Redis("redis://127.0.0.1:6379".into()))
    );
    assert!(c.key_encryption_key.is_some());
    // The flag wins over the variable.
    let c = run(
        &["--store", "sqlite:a.db"],
        &env("redis://h:1", kek.clone()),
    )
    .unwrap();
    assert_eq!(c.store, Some(StoreSpec::Sqlite("a.db".into())));
    assert_eq!(parse(&[]).unwrap().store, None);
    let dir = std::env::temp_dir().join(format!("kek-{}", std::process::id()));
    std::fs::write(&dir, format!("{kek}\n")).unwrap();
    let c = parse(&["--key-encryption-key-file", dir.to_str().unwrap()]).unwrap();
    assert!(c.key_encryption_key.is_some());
    std::fs::write(&dir, "dG9vIHNob3J0").unwrap();
    let err = parse(&["--key-encryption-key-file", dir.to_str().unwrap()]).unwrap_err();
    assert!(
        err.contains("32 bytes") && !err.contains("dG9vIHNob3J0"),
        "{err}"
    );
    let _ = std::fs::remove_file(&dir);
    let err = run(&[], &env("redis://h:1", "short".into())).unwrap_err();
    assert!(err.contains(KEK_ENV) && !err.contains("short"), "{err}");
    assert!(parse(&["--store", "mysql://x"]).is_err());
}

#[test]
fn a_bad_store_flag_is_an_error_that_does_not_quote_a_password() {
    let e = parse(&["--store", "mysql://:hunter2@h:1"]).unwrap_err();
    assert!(e.contains("--store") && !e.contains("hunter2"), "{e}");
    let Ok(Command::Help(text)) = Config::from_args(["--help".to_owned()]) else {
        panic!("expected help");
    };
    assert!(text.contains("--store") && text.contains("--key-encryption-key-file"));
    assert!(text.contains(STORE_ENV) && text.contains(KEK_ENV));
}

#[test]
fn the_upstream_flags_are_checked_together_and_the_secret_comes_from_a_file_or_the_environment() {
    let base = [
        "--upstream-issuer",
        "https://id.example",
        "--upstream-client-id",
        "spa",
        "--redirect-uri",
        "https://app.example/auth/callback",
    ];
    let run = |args: &[&str], secret: Option<&'static str>| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env = move |name: &str| {
            (name == UPSTREAM_CLIENT_SECRET_ENV)
                .then_some(secret)
                .flatten()
                .map(std::ffi::OsString::from)
        };
        match Config::from_args_and_env(args, env)? {
            Command::Run(c) => Ok(*c),
            Command::Help(_) => Err("help".to_owned()),
        }
    };
    let c = run(&base, Some("s3cret-from-env")).unwrap();
    let up = c.upstream.expect("upstream mode");
    assert_eq!(up.issuer, "https://id.example");
    assert_eq!(*up.client_secret, "s3cret-from-env");
    assert_eq!(
        up.scopes,
        ["openid", "profile", "email", "offline_access"],
        "the default scopes"
    );
    assert!(
        !format!("{up:?}").contains("s3cret"),
        "Debug hides the secret"
    );
    let err = run(&base, None).unwrap_err();
    assert!(err.contains(UPSTREAM_CLIENT_SECRET_ENV), "{err}");
    let path = std::env::temp_dir().join(format!("oidc-secret-{}", std::process::id()));
    std::fs::write(&path, "file-s3cret\n").unwrap();
    let mut with_file = base.to_vec();
    with_file.extend(["--upstream-client-secret-file", path.to_str().unwrap()]);
    let c = run(&with_file, None).unwrap();
    assert_eq!(*c.upstream.unwrap().client_secret, "file-s3cret");
    let _ = std::fs::remove_file(&path);
    assert!(run(&base[..4], Some("x")).is_err(), "no --redirect-uri");
    assert!(run(&base[2..], Some("x")).is_err(), "no --upstream-issuer");
    let mut open_redirect = base.to_vec();
    open_redirect.extend(["--post-login-redirect", "evil.example"]);
    assert!(run(&open_redirect, Some("x")).is_err());
    assert!(parse(&[]).unwrap().upstream.is_none());
}
