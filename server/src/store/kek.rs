//! Encryption at rest of the private signing keys a shared store holds: AES-256-GCM under
//! a key-encryption key (KEK) that never enters the store. The `kid` is the associated
//! data, so a ciphertext moved to another key's entry does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use zeroize::Zeroizing;

use super::StoreError;

/// Environment variable holding the KEK as base64 of 32 bytes.
pub const KEK_ENV: &str = "TOKEN_SERVER_KEY_ENCRYPTION_KEY";

const NONCE_LEN: usize = 12;
/// Version byte in front of every sealed key, so the format can change later.
const FORMAT: u8 = 1;

/// A key-encryption key. Secret: `Debug` is redacted and the bytes are zeroized on drop.
#[derive(Clone)]
pub struct KeyEncryptionKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    /// Parses base64 (standard alphabet, padding optional, surrounding whitespace ignored)
    /// of exactly 32 bytes. The error never repeats the input.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let text = text.trim().trim_end_matches('=');
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text)
                .map_err(|_| "the key-encryption key is not valid base64".to_owned())?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "the key-encryption key must be 32 bytes (base64 of 32 bytes), not {}",
                bytes.len()
            )
        })?;
        Ok(Self(Zeroizing::new(key)))
    }

    /// A random KEK, for tests and for `openssl rand -base64 32`-like setup.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut key[..]);
        Self(key)
    }

    /// The base64 form accepted by [`Self::from_base64`].
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.0[..])
    }

    /// A secret derived from the key for `purpose` (HMAC-SHA256): the same on every instance
    /// that shares the key, and telling nothing about it.
    pub(crate) fn derive(&self, purpose: &[u8]) -> Vec<u8> {
        use hmac::Mac as _;
        let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(&self.0[..])
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(purpose);
        mac.finalize().into_bytes().to_vec()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.0))
    }

    /// `FORMAT || nonce || ciphertext+tag` of `plaintext`, bound to `kid`.
    pub(crate) fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Backend("cannot encrypt a signing key".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`Self::seal`] made for `kid`. Fails on another KEK, another `kid`
    /// or any altered byte.
    pub(crate) fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let refuse = || {
            StoreError::Backend(format!(
                "signing key {kid} does not decrypt with this key-encryption key \
                 (another KEK, or altered data)"
            ))
        };
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != FORMAT {
            return Err(refuse());
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().map_err(|_| refuse())?;
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_its_kek_and_its_kid() {
        let kek = KeyEncryptionKey::generate();
        let sealed = kek.seal("kid-1", b"private der").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"private der"));
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"private der");
        assert!(kek.open("kid-2", &sealed).is_err());
        assert!(KeyEncryptionKey::generate().open("kid-1", &sealed).is_err());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(kek.open("kid-1", &altered).is_err());
    }

    #[test]
    fn a_kek_must_be_base64_of_32_bytes_and_the_error_does_not_echo_it() {
        let kek = KeyEncryptionKey::generate();
        let parsed = KeyEncryptionKey::from_base64(&format!(" {}\n", kek.to_base64())).unwrap();
        assert_eq!(*parsed.0, *kek.0);
        let short = STANDARD.encode([7u8; 16]);
        let err = KeyEncryptionKey::from_base64(&short).unwrap_err();
        assert!(err.contains("32 bytes") && !err.contains(&short), "{err}");
        assert!(KeyEncryptionKey::from_base64("not base64 !!").is_err());
    }
}
