//! What DPoP costs the reference server (issue 15): `verify_proof` alone (ES256 and EdDSA),
//! and `GET /api/me` on loopback with a bearer token against a DPoP-bound token with its
//! proof (verification, and the replay cache write in the store), one keep-alive connection.
//! Proofs are signed before the clock starts: the client's signing is the browser's cost,
//! measured by the browser benchmark. Prints a Markdown table. `--quick` for a short run.
//!
//! `cargo bench --profile server-release -p token-manager-server --bench dpop` (the
//! server's own optimised profile, as `bench/server/run.sh` uses).

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Value};
use token_manager_server::dpop::{access_token_hash, verify_proof, ProofCheck};
use token_manager_server::{null_sink, Config, DemoUser, Server, SigningAlgorithm};

#[path = "../../server/tests/common/http.rs"]
mod http;

use http::{Connection, Request};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Makes proofs with a fresh key of one algorithm.
enum Signer {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

impl Signer {
    fn new(alg: &str) -> Self {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        match alg {
            "ES256" => Self::Es256(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng)),
            _ => Self::EdDsa(ed25519_dalek::SigningKey::from_bytes(&seed)),
        }
    }

    fn header(&self) -> Value {
        match self {
            Self::Es256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {
                    "kty": "EC", "crv": "P-256", "x": b64(p.x().unwrap()), "y": b64(p.y().unwrap())}})
            }
            Self::EdDsa(k) => json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {
                "kty": "OKP", "crv": "Ed25519", "x": b64(k.verifying_key().as_bytes())}}),
        }
    }

    fn proof(&self, htm: &str, htu: &str, ath: Option<&str>, i: usize) -> String {
        let mut claims =
            json!({"jti": format!("bench-{i}-{}", now()), "htm": htm, "htu": htu, "iat": now()});
        if let Some(ath) = ath {
            claims["ath"] = ath.into();
        }
        let input = format!(
            "{}.{}",
            b64(self.header().to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match self {
            Self::Es256(k) => {
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            Self::EdDsa(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(input.as_bytes()).to_bytes().to_vec()
            }
        };
        format!("{input}.{}", b64(&signature))
    }
}

fn percentile_us(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn row(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "| {what} | {} | {:.1} | {:.1} |",
        samples.len(),
        percentile_us(&samples, 0.5),
        percentile_us(&samples, 0.99)
    );
}

async fn me_latencies(alg: SigningAlgorithm, dpop: bool, n: usize) -> Vec<Duration> {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        algorithm: alg,
        demo_users: vec![DemoUser::new("bench", "bench-password")],
        log: null_sink(),
        key_rotation: None,
        ..Config::default()
    };
    let server = Server::bind(config).await.expect("server starts");
    let addr = server.local_addr();
    tokio::spawn(async move {
        let _ = server.run().await;
    });
    let signer = Signer::new("ES256");
    let mut conn = Connection::open(addr).await.unwrap();
    let mut login =
        Request::post("/auth/login").header("Origin", &format!("http://localhost:{}", addr.port()));
    if dpop {
        login = login.header(
            "DPoP",
            &signer.proof("POST", "http://localhost/auth/login", None, 0),
        );
    }
    let r = conn
        .send(&login.json(&json!({"username": "bench", "password": "bench-password"})))
        .await
        .unwrap();
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let ath = access_token_hash(&token);
    let requests: Vec<Request> = (0..n)
        .map(|i| {
            if dpop {
                Request::get("/api/me")
                    .header("Authorization", &format!("DPoP {token}"))
                    .header(
                        "DPoP",
                        &signer.proof("GET", "http://localhost/api/me", Some(&ath), i + 1),
                    )
            } else {
                Request::get("/api/me").header("Authorization", &format!("Bearer {token}"))
            }
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for request in &requests {
        let start = Instant::now();
        let r = conn.send(request).await.unwrap();
        out.push(start.elapsed());
        assert_eq!(r.status, 200, "{}", r.text());
    }
    out
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 200 } else { 2000 };
    println!("| what | samples | median µs | p99 µs |");
    println!("|---|---|---|---|");
    for alg in ["ES256", "EdDSA"] {
        let signer = Signer::new(alg);
        let htu = "http://localhost/api/me";
        let token = "eyJhbGciOiJFUzI1NiJ9.e30.sig";
        let ath = access_token_hash(token);
        let proofs: Vec<String> = (0..n)
            .map(|i| signer.proof("GET", htu, Some(&ath), i))
            .collect();
        let check = ProofCheck {
            method: "GET",
            htu,
            now: now(),
            iat_window: 60,
            access_token: Some(token),
        };
        let samples = proofs
            .iter()
            .map(|p| {
                let start = Instant::now();
                verify_proof(p, &check).expect("the proof verifies");
                start.elapsed()
            })
            .collect();
        row(&format!("verify_proof, {alg} proof"), samples);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (what, dpop) in [
        ("GET /api/me, Bearer (ES256 token)", false),
        ("GET /api/me, DPoP (ES256 token + ES256 proof)", true),
    ] {
        row(
            what,
            rt.block_on(me_latencies(SigningAlgorithm::Es256, dpop, n)),
        );
    }
}
