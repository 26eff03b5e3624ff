//! Server nonces (`--dpop-nonce`), stateless and shared: the nonce of a time window is an
//! HMAC of the window's number under a secret every instance of a store derives alike, so
//! any instance accepts what another handed out, and nothing is written per nonce.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Seconds one nonce is current. The previous one is still accepted, so a nonce lives
/// between one and two periods.
pub(crate) const NONCE_PERIOD: u64 = 300;

pub(crate) struct Nonces {
    secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces([redacted])")
    }
}

impl Nonces {
    pub(crate) fn new(secret: Vec<u8>) -> Self {
        Self {
            secret: Zeroizing::new(secret),
        }
    }

    fn of_window(&self, window: u64) -> String {
        // HMAC takes a key of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(b"dpop-nonce:");
        mac.update(&window.to_be_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    /// The nonce to hand out at `now`.
    pub(crate) fn current(&self, now: u64) -> String {
        self.of_window(now / NONCE_PERIOD)
    }

    /// `true` for the nonce of the current or the previous window.
    pub(crate) fn accepts(&self, nonce: &str, now: u64) -> bool {
        let window = now / NONCE_PERIOD;
        [Some(window), window.checked_sub(1)]
            .into_iter()
            .flatten()
            .any(|w| constant_time_eq(self.of_window(w).as_bytes(), nonce.as_bytes()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_for_its_window_and_the_next_then_refused() {
        let n = Nonces::new(vec![7; 32]);
        let t = 1_700_000_000 / NONCE_PERIOD * NONCE_PERIOD;
        let nonce = n.current(t);
        assert!(n.accepts(&nonce, t));
        assert!(n.accepts(&nonce, t + NONCE_PERIOD - 1));
        assert!(n.accepts(&nonce, t + NONCE_PERIOD));
        assert!(!n.accepts(&nonce, t + 2 * NONCE_PERIOD));
        assert!(!n.accepts("", t));
        // Another secret (another deployment) makes other nonces.
        assert!(!Nonces::new(vec![8; 32]).accepts(&nonce, t));
    }
}
