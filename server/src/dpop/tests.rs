//! Unit tests of DPoP proofs: htu normalisation, the refusal reasons, nonce windows.

use super::proof::normalize_htu;
use super::*;

#[test]
fn htu_normalisation_drops_query_fragment_default_port_and_case() {
    let n = |u| normalize_htu(u);
    assert_eq!(
        n("HTTP://LocalHost:80/auth/refresh?x=1#f").as_deref(),
        Some("http://localhost/auth/refresh")
    );
    assert_eq!(
        n("https://a.example:443").as_deref(),
        Some("https://a.example/")
    );
    assert_eq!(
        n("http://localhost:8080/x").as_deref(),
        Some("http://localhost:8080/x")
    );
    assert_eq!(n("http://u@localhost/x"), None);
    assert_eq!(n("ftp://localhost/x"), None);
    assert_eq!(n("/auth/refresh"), None);
}

#[test]
fn every_reason_has_its_own_word_and_description() {
    use std::collections::HashSet;
    let all = [
        Refusal::Missing,
        Refusal::MultipleProofs,
        Refusal::TooLarge,
        Refusal::Malformed,
        Refusal::BadTyp,
        Refusal::AlgNone,
        Refusal::AlgHmac,
        Refusal::UnsupportedAlg,
        Refusal::BadJwk,
        Refusal::PrivateKey,
        Refusal::BadSignature,
        Refusal::WrongHtm,
        Refusal::WrongHtu,
        Refusal::StaleIat,
        Refusal::FutureIat,
        Refusal::MissingAth,
        Refusal::WrongAth,
        Refusal::ThumbprintMismatch,
        Refusal::ReplayedJti,
        Refusal::MissingNonce,
        Refusal::StaleNonce,
    ];
    let words: HashSet<_> = all.iter().map(|r| r.as_str()).collect();
    let texts: HashSet<_> = all.iter().map(|r| r.description()).collect();
    assert_eq!(words.len(), all.len());
    assert_eq!(texts.len(), all.len());
}
