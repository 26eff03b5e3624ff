//! Unit tests of Config: the demo accounts and their list formats.

use super::*;

#[test]
fn the_environment_list_takes_newlines_and_commas_and_keeps_roles_together() {
    let users = DemoUser::parse_env_list(
        "demo:pw,alice:secret:Alice Liddell:admin,user\nbob:b0b\r\n\n, carol:c:Carol:ops",
    )
    .unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["demo", "alice", "bob", "carol"]);
    assert_eq!(users[0], DemoUser::new("demo", "pw"));
    assert_eq!(users[1].password, "secret");
    assert_eq!(users[1].roles, ["admin", "user"]);
    assert_eq!(users[2].password, "b0b");
    assert_eq!(users[3].roles, ["ops"]);
    assert_eq!(DemoUser::parse_env_list("").unwrap(), []);
    // A piece without `:` after a spec without roles is an error, not part of a password.
    assert!(DemoUser::parse_env_list("demo:pw,user").is_err());
}

#[test]
fn a_bad_environment_entry_is_an_error_that_does_not_quote_it() {
    let e = DemoUser::parse_env_list("demo:pw\nhunter2-no-colon").unwrap_err();
    assert!(e.contains("account 2"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let e = DemoUser::parse_env_list("demo:").unwrap_err();
    assert!(e.contains(DEMO_USERS_ENV), "{e}");
}

#[test]
fn the_file_list_has_one_account_a_line_and_skips_blanks_and_comments() {
    let users = DemoUser::parse_file_list(
        "# demo accounts\n\ndemo:pw\r\n  alice:secret:Alice Liddell:admin,user  \n",
    )
    .unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0], DemoUser::new("demo", "pw"));
    assert_eq!(users[1].roles, ["admin", "user"]);
    let e = DemoUser::parse_file_list("demo:pw\n\nhunter2").unwrap_err();
    assert!(e.contains("line 3") && !e.contains("hunter2"), "{e}");
}

#[test]
fn demo_user_debug_hides_the_password() {
    let u = DemoUser::new("demo", "hunter2");
    assert!(!format!("{u:?}").contains("hunter2"));
}
