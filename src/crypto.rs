//! Secrets at rest: XChaCha20-Poly1305 with a key id in every ciphertext so keys can rotate.
//!
//! Layout of a sealed value: `version (1) | key id (4) | nonce (24) | ciphertext + tag`.
//! The key id is derived from the key itself, so rotating means: set the new `ENCRYPTION_KEY`,
//! move the old one to `ENCRYPTION_KEYS_PREVIOUS`, and values re-seal on their next write.
//! The associated data binds a ciphertext to the row it belongs to, so blobs cannot be swapped.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the value was sealed with a key that is not configured (key id {0})")]
    UnknownKey(String),
    #[error("the value could not be opened: wrong key or tampered data")]
    Tampered,
}

/// Parses a key as `keygen` prints it: base64 of 32 random bytes.
pub fn parse_key(text: &str) -> Result<[u8; 32], &'static str> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "must be base64 (of 32 random bytes)")?;
    bytes
        .try_into()
        .map_err(|_| "must be 32 bytes once decoded from base64")
}

/// A fresh key, base64, as `keygen` prints it.
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    STANDARD.encode(key)
}

struct Key {
    id: [u8; KEY_ID_LEN],
    cipher: XChaCha20Poly1305,
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"followup-bot key id v1")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self {
            id,
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }
}

/// Seals and opens secrets with the current key; opens with any configured previous key too.
pub struct Cipher {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("key_id", &hex(&self.current.id))
            .finish_non_exhaustive()
    }
}

/// A key id as `key_id()` and the logs spell it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Cipher {
    pub fn new(current: &SecretString, previous: &[SecretString]) -> Result<Self, &'static str> {
        let current = Key::new(&parse_key(current.expose_secret())?);
        let previous = previous
            .iter()
            .map(|k| parse_key(k.expose_secret()).map(|b| Key::new(&b)))
            .collect::<Result<_, _>>()?;
        Ok(Self { current, previous })
    }

    /// Reads the key from `path`, creating it (mode 0600) when absent. For the SQLite default
    /// only: with PostgreSQL the key must come from `ENCRYPTION_KEY` so replicas share it.
    pub fn from_key_file(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            write_private(path, generate_key().as_bytes())
                .with_context(|| format!("writing a new key to {}", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                "no ENCRYPTION_KEY set: generated one in this file; back it up with the database"
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the key file {}", path.display()))?;
        let key = SecretString::from(text.trim().to_owned());
        Cipher::new(&key, &[]).map_err(|e| anyhow::anyhow!("the key file {} {e}", path.display()))
    }

    pub fn key_id(&self) -> String {
        hex(&self.current.id)
    }

    /// Whether a key id (as sealed values carry it, e.g. from `Store::credential_key_ids`)
    /// is the current key's or a previous key's: values sealed with it open.
    pub fn knows_key_id(&self, id: &[u8]) -> bool {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|k| k.id == id)
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, blob: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        if blob.len() < HEADER_LEN + 16 || blob[0] != VERSION {
            return Err(CryptoError::Malformed);
        }
        let id = &blob[1..1 + KEY_ID_LEN];
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(hex(id)))?;
        let nonce = XNonce::from_slice(&blob[1 + KEY_ID_LEN..HEADER_LEN]);
        key.cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &blob[HEADER_LEN..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Tampered)
    }

    pub fn seal_str(&self, secret: &SecretString, context: &str) -> Vec<u8> {
        self.seal(secret.expose_secret().as_bytes(), context)
    }

    pub fn open_str(&self, blob: &[u8], context: &str) -> Result<SecretString, CryptoError> {
        let bytes = self.open(blob, context)?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Malformed)
    }

    /// True when the blob was sealed with an older key and should be re-sealed.
    pub fn needs_reseal(&self, blob: &[u8]) -> bool {
        blob.get(1..1 + KEY_ID_LEN) != Some(&self.current.id[..])
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> Cipher {
        Cipher::new(&SecretString::from(generate_key()), &[]).unwrap()
    }

    #[test]
    fn round_trip_and_no_plaintext() {
        let c = cipher();
        let blob = c.seal(b"fathom-key-123", "credentials:1:fathom");
        assert!(!blob.windows(6).any(|w| w == b"fathom"));
        assert_eq!(
            c.open(&blob, "credentials:1:fathom").unwrap(),
            b"fathom-key-123"
        );
    }

    #[test]
    fn context_is_bound() {
        let c = cipher();
        let blob = c.seal(b"secret", "credentials:1:fathom");
        assert!(matches!(
            c.open(&blob, "credentials:2:fathom"),
            Err(CryptoError::Tampered)
        ));
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old_key = SecretString::from(generate_key());
        let old = Cipher::new(&old_key, &[]).unwrap();
        let blob = old.seal(b"secret", "ctx");
        let new = Cipher::new(&SecretString::from(generate_key()), &[old_key]).unwrap();
        assert_eq!(new.open(&blob, "ctx").unwrap(), b"secret");
        assert!(new.needs_reseal(&blob));
        assert!(!new.needs_reseal(&new.seal(b"secret", "ctx")));
        let stranger = cipher();
        assert!(matches!(
            stranger.open(&blob, "ctx"),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_parse() {
        assert!(parse_key(&generate_key()).is_ok());
        assert!(parse_key("short").is_err());
    }
}
