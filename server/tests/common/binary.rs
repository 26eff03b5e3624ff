//! The server binary as a child process, for tests that must run what is deployed.
//!
//! `TOKEN_SERVER_BIN` names the binary (scripts/test.sh points it at the release build);
//! by default it is the binary of the same cargo build as the test.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::http::{self, Request, Response};

const ORIGIN_PLACEHOLDER: &str = "http://localhost";

pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    pub origin: String,
}

impl Binary {
    /// Starts the binary on a free port with the test switches, ES256, the demo user and
    /// `extra` flags and environment variables; waits for its `listening on` line.
    pub fn start(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let path = std::env::var("TOKEN_SERVER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_token-manager-server").to_owned());
        let mut child = Command::new(&path)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--alg",
                "ES256",
                "--demo-user",
                "demo:demo-password",
                "--test-switches",
            ])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {path}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let addr: SocketAddr = url.parse().expect("an address");
        Binary {
            child,
            origin: format!("{ORIGIN_PLACEHOLDER}:{}", addr.port()),
            addr,
        }
    }

    /// Panics if the process has exited (the release build aborted, for instance).
    pub fn assert_running(&mut self, after: &str) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("the server exited ({status}) after {after}");
        }
    }

    pub async fn send(&mut self, request: &Request, what: &str) -> Response {
        let answer = http::send(self.addr, request).await;
        self.assert_running(what);
        match answer {
            Ok(response) => response,
            Err(e) => {
                // An aborting process closes its sockets before it is reaped: tell that
                // apart from a connection the server closed on purpose.
                for _ in 0..100 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    self.assert_running(what);
                }
                panic!("no answer to {what}: {e}")
            }
        }
    }

    /// The JWKS still answers: the server serves normally.
    pub async fn assert_serving(&mut self, after: &str) {
        let r = self
            .send(&Request::get("/.well-known/jwks.json"), after)
            .await;
        assert_eq!(r.status, 200, "JWKS after {after}");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
