//! Encryption at rest: AES-256-GCM under a [`Keyring`] (`TOKEN_ENCRYPTION_KEY`, and the
//! retired keys still readable, `TOKEN_ENCRYPTION_OLD_KEYS`).
//!
//! A sealed value is text: `v1.<key id>.<base64 of nonce ‖ ciphertext ‖ tag>`. The nonce is 12
//! fresh random bytes per sealing; the key id (the first 8 hex digits of the key's SHA-256, so
//! nothing about the key itself) names which key opens it, so old rows stay readable after a
//! rotation and `app keys rotate` can find what to re-seal. The caller's `context` (say
//! `refresh_token:62515`) is bound in as associated data: a ciphertext moved to another row or
//! column does not open.
//!
//! A blind index ([`Keyring::blind`]) finds a sealed value without opening it: an HMAC-SHA256
//! of the value under a key derived from each encryption key, `b1.<key id>.<hex>`. Equal
//! values give equal indexes under one key; without the key, a phone number's index cannot be
//! found by trying every number (a plain hash can). A lookup asks for the indexes under every
//! key of the ring, so rows written before a rotation are still found.
//!
//! A leaf: imports nothing of the app but [`crate::secret`].

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

const VERSION: &str = "v1";

/// Why a key or a sealed value was refused. Never carries key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("{0}: not base64 of exactly 32 bytes; make one with `openssl rand -base64 32`")]
    BadKey(&'static str),
    #[error("sealed with key {0}, which is neither TOKEN_ENCRYPTION_KEY nor in TOKEN_ENCRYPTION_OLD_KEYS")]
    UnknownKey(String),
    #[error("not a sealed value (expected v1.<key id>.<base64>)")]
    Malformed,
    #[error("the sealed value does not open: tampered with, or sealed for another row")]
    Tampered,
}

/// One AES-256 key, its id, and the key of its blind index (derived from it, never the key
/// itself).
#[derive(Clone)]
struct EncryptionKey {
    id: String,
    cipher: Aes256Gcm,
    index_key: [u8; 32],
}

impl EncryptionKey {
    fn parse(raw: &str, name: &'static str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(raw.trim())
            .map_err(|_| CryptoError::BadKey(name))?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey(name));
        }
        let id = Sha256::digest(&bytes)[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut derive = Sha256::new();
        derive.update(b"blind-index/v1\0");
        derive.update(&bytes);
        Ok(Self {
            id,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
            index_key: derive.finalize().into(),
        })
    }
}

/// The current key, which seals, and the retired ones, which only open.
#[derive(Clone)]
pub struct Keyring {
    current: EncryptionKey,
    retired: Vec<EncryptionKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let retired: Vec<&str> = self.retired.iter().map(|k| k.id.as_str()).collect();
        write!(
            f,
            "Keyring(current {}, retired {retired:?})",
            self.current.id
        )
    }
}

impl Keyring {
    /// From `TOKEN_ENCRYPTION_KEY` and a comma-separated `TOKEN_ENCRYPTION_OLD_KEYS`.
    pub fn new(current: &Secret, retired: Option<&Secret>) -> Result<Self, CryptoError> {
        let current = EncryptionKey::parse(current.expose(), "TOKEN_ENCRYPTION_KEY")?;
        let retired = retired
            .map(|r| {
                r.expose()
                    .split(',')
                    .filter(|k| !k.trim().is_empty())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .map(|k| EncryptionKey::parse(k, "TOKEN_ENCRYPTION_OLD_KEYS"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { current, retired })
    }

    /// The id of the key that seals now.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plain` for `context` under the current key, with a fresh nonce.
    pub fn seal(&self, plain: &Secret, context: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = format!("{VERSION}.{}.{context}", self.current.id);
        let sealed = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.expose().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM seals any input under 64 GiB");
        let mut blob = nonce.to_vec();
        blob.extend(sealed);
        format!("{VERSION}.{}.{}", self.current.id, STANDARD.encode(blob))
    }

    /// Opens a value sealed for `context` by this key or a retired one.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Secret, CryptoError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?;
        let blob = STANDARD.decode(body).map_err(|_| CryptoError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(12);
        let aad = format!("{VERSION}.{id}.{context}");
        let plain = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Tampered)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| CryptoError::Tampered)
    }

    /// The blind index of `value` under every key of the ring, the current key's first (the
    /// one to store).
    pub fn blind(&self, value: &str) -> Vec<String> {
        use hmac::{Hmac, Mac};
        std::iter::once(&self.current)
            .chain(&self.retired)
            .map(|k| {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&k.index_key)
                    .expect("HMAC takes a key of any length");
                mac.update(value.as_bytes());
                format!("b1.{}.{}", k.id, hex::encode(mac.finalize().into_bytes()))
            })
            .collect()
    }

    /// Whether `sealed` is under a key other than the current one (rotation re-seals those).
    pub fn is_stale(&self, sealed: &str) -> bool {
        sealed.split('.').nth(1) != Some(self.current.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Secret {
        Secret::new(STANDARD.encode([byte; 32]))
    }

    #[test]
    fn seals_with_a_fresh_nonce_and_opens_only_in_its_context() {
        let ring = Keyring::new(&key(1), None).unwrap();
        let token = Secret::new("refresh-abc");
        let a = ring.seal(&token, "refresh_token:1");
        let b = ring.seal(&token, "refresh_token:1");
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("refresh-abc"));
        assert_eq!(
            ring.open(&a, "refresh_token:1").unwrap().expose(),
            "refresh-abc"
        );
        assert_eq!(
            ring.open(&a, "refresh_token:2").unwrap_err(),
            CryptoError::Tampered,
            "moved to another row"
        );
    }

    #[test]
    fn a_flipped_bit_is_tampering_not_a_crash_or_a_leak() {
        let ring = Keyring::new(&key(1), None).unwrap();
        let sealed = ring.seal(&Secret::new("access-xyz"), "c");
        let (head, body) = sealed.rsplit_once('.').unwrap();
        let mut blob = STANDARD.decode(body).unwrap();
        blob[20] ^= 1;
        let forged = format!("{head}.{}", STANDARD.encode(blob));
        let err = ring.open(&forged, "c").unwrap_err();
        assert_eq!(err, CryptoError::Tampered);
        assert!(!err.to_string().contains("access-xyz"));
        assert_eq!(ring.open("hello", "c").unwrap_err(), CryptoError::Malformed);
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_marks_them_stale() {
        let old = Keyring::new(&key(1), None).unwrap();
        let sealed = old.seal(&Secret::new("t"), "c");
        let new = Keyring::new(&key(2), Some(&key(1))).unwrap();
        assert!(new.is_stale(&sealed));
        assert_eq!(new.open(&sealed, "c").unwrap().expose(), "t");
        assert!(!new.is_stale(&new.seal(&Secret::new("t"), "c")));
        let forgotten = Keyring::new(&key(2), None).unwrap();
        assert!(matches!(
            forgotten.open(&sealed, "c"),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn a_blind_index_is_keyed_stable_and_found_across_a_rotation() {
        let old = Keyring::new(&key(1), None).unwrap();
        let a = old.blind("+14155550100");
        assert_eq!(a, old.blind("+14155550100"), "stable");
        assert_ne!(a, old.blind("+14155550101"));
        assert!(!a[0].contains("4155550100"));
        let plain = hex::encode(Sha256::digest(b"+14155550100"));
        assert!(!a[0].contains(&plain), "keyed, not a plain hash");
        let new = Keyring::new(&key(2), Some(&key(1))).unwrap();
        let both = new.blind("+14155550100");
        assert_eq!(both.len(), 2);
        assert_ne!(both[0], a[0], "the current key's first");
        assert_eq!(
            both[1], a[0],
            "a row indexed before the rotation is still found"
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        for bad in ["", "not base64!", &STANDARD.encode([0u8; 16])] {
            let err = Keyring::new(&Secret::new(bad.to_string()), None).unwrap_err();
            assert!(err.to_string().contains("openssl rand -base64 32"), "{err}");
        }
    }
}
