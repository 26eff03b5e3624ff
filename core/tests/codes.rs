//! The registry of error codes (`core/src/code.rs`) is the one source: the TypeScript unions
//! of the package's `.d.ts` are generated from it (`ErrorCode::TYPESCRIPT`, put in the `.d.ts`
//! by `src/lib.rs`), and the README's list of errors must name exactly its codes. These tests
//! keep them in step (they run in `npm test`; `scripts/build.sh` checks the built `.d.ts`).

use std::collections::BTreeSet;
use std::error::Error;

use token_manager_core::session::{RefreshError, TokenError};
use token_manager_core::verify::VerifyError;
use token_manager_core::{CodeGroup, DecodeError, ErrorCode};

const LIB_RS: &str = include_str!("../../src/lib.rs");
const README: &str = include_str!("../../README.md");

/// The quoted strings of `export type NAME = …;` in the generated TypeScript.
fn union(name: &str) -> BTreeSet<String> {
    let ts = ErrorCode::TYPESCRIPT;
    let start = ts
        .find(&format!("export type {name} ="))
        .unwrap_or_else(|| panic!("no union {name} in ErrorCode::TYPESCRIPT"));
    let text = &ts[start..];
    let text = &text[..text.find(';').unwrap()];
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn registry(group: CodeGroup) -> BTreeSet<String> {
    ErrorCode::ALL
        .iter()
        .filter(|c| c.group() == group)
        .map(|c| c.as_str().to_owned())
        .collect()
}

#[test]
fn every_code_is_registered_once() {
    let all: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        all.len(),
        ErrorCode::ALL.len(),
        "a code string appears twice"
    );
}

#[test]
fn the_typescript_unions_are_exactly_the_registry() {
    assert_eq!(union("DecodeErrorCode"), registry(CodeGroup::Decode));
    assert_eq!(union("VerifyErrorCode"), registry(CodeGroup::Verify));
    // `ErrorCode` is the two unions above plus the manager's own codes.
    assert_eq!(union("ErrorCode"), registry(CodeGroup::Manager));
    assert!(ErrorCode::TYPESCRIPT.contains("  | DecodeErrorCode | VerifyErrorCode\n"));
    // Every member is on a line of its own, quoted once: no code glued to another.
    let members = ErrorCode::TYPESCRIPT.matches("\n  | \"").count();
    assert_eq!(members, ErrorCode::ALL.len());
}

#[test]
fn the_browser_package_puts_the_generated_unions_in_its_typescript() {
    assert!(LIB_RS.contains(
        "#[wasm_bindgen(typescript_custom_section)]\n\
         const ERROR_CODE_TYPES: &'static str = token_manager_core::ErrorCode::TYPESCRIPT;"
    ));
    // No hand-written copy left beside the generated one.
    assert!(!LIB_RS.contains("export type ErrorCode"));
    assert!(!LIB_RS.contains("export type DecodeErrorCode"));
}

#[test]
fn the_readme_lists_every_code() {
    let start = README
        .find("### Errors")
        .expect("README has an Errors section");
    let section = &README[start..];
    let section = &section[..section[4..].find("\n## ").map_or(section.len(), |i| i + 4)];
    let missing: Vec<&str> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !section.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README's Errors section lacks {missing:?}"
    );
    assert!(
        !section.contains('…'),
        "README's list of codes is complete, not elided"
    );
}

#[test]
fn wrapping_errors_name_their_cause() {
    let decode = DecodeError::Malformed { segments: 2 };
    let token = TokenError::Decode(decode.clone());
    assert_eq!(
        token.source().map(|e| e.to_string()),
        Some(decode.to_string())
    );
    let refresh = RefreshError::BadToken(TokenError::Unverified(VerifyError::BadSignature));
    let cause = refresh.source().expect("a bad token is the cause");
    let root = cause
        .source()
        .expect("the verification error is the token's cause");
    assert_eq!(root.to_string(), VerifyError::BadSignature.to_string());
    assert!(root.source().is_none());
    assert_eq!(refresh.code(), "bad_signature");
    assert_eq!(refresh.error_code(), ErrorCode::BadSignature);
    assert!(VerifyError::Decode(decode).source().is_some());
    assert!(RefreshError::Forbidden.source().is_none());
}

#[test]
fn a_token_that_does_not_decode_is_a_decode_error_whoever_found_it() {
    let decode = DecodeError::Malformed { segments: 2 };
    assert_eq!(
        TokenError::from(VerifyError::Decode(decode.clone())),
        TokenError::Decode(decode)
    );
    assert_eq!(
        TokenError::from(VerifyError::BadSignature),
        TokenError::Unverified(VerifyError::BadSignature)
    );
}
