//! The sans-IO core of wasm-token-manager.
//!
//! This crate decides; it never acts. It reads no clock, sleeps never, performs no I/O and
//! draws no random numbers: the caller passes the current time into every input and a seed
//! into the [`Session`] constructor, so the same inputs always give the same outputs. That is
//! what lets the timing policy be tested against a virtual clock — hours of sleep, clocks
//! hours off, storms of 429s — in microseconds, and lets the same logic run in a browser tab,
//! a worker or a test.
//!
//! Shape (after quinn-proto): inputs are `handle_*` methods; outputs are polled —
//! [`Session::poll_timeout`] (the one next deadline), [`Session::poll_action`] (what the
//! driver must do) and [`Session::poll_event`] (what the application should hear).
//!
//! Every error code of the package is an [`ErrorCode`] (the registry, `code.rs`).
//!
//! Modules: [`dangerous`] decodes tokens without verifying them, [`claims`] types their
//! claims, [`schedule`] is the timing policy, [`session`] the state machine, [`protocol`] the
//! wire contract shared with the server, [`retry_after`] parses the `Retry-After` header,
//! [`json`] is the strict JSON reader used for token segments, [`verify`] the signature
//! verification policy, [`endpoint`] the loopback rule for `http:` endpoints, [`server_clock`] the issuer's clock
//! estimated from `Date` headers, [`dpop`] the pure parts of DPoP proofs (RFC 9449),
//! [`message`] the error messages (written without `core::fmt`).

// The package build (scripts/build.sh) compiles the claims scan for speed.
#![cfg_attr(tm_fast_scan, feature(optimize_attribute))]
#![deny(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

pub mod claims;
mod code;
pub mod dangerous;
pub mod dpop;
pub mod endpoint;
mod error;
pub mod header;
pub mod json;
pub mod message;
pub mod protocol;
pub mod retry_after;
pub mod schedule;
mod secret;
pub mod server_clock;
pub mod session;
mod time;
pub mod verify;

pub use claims::{Audience, Claims};
pub use code::{CodeGroup, ErrorCode};
pub use error::{DecodeError, Part};
pub use header::Header;
pub use json::Value;
pub use jsonwebtoken::Algorithm;
pub use secret::AccessToken;
pub use session::{Action, Event, Session, SessionState};
pub use time::{timer_delay, Clock, Timestamp, MAX_TIMER_DELAY};
