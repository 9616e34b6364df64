//! Secrets at rest: Twilio auth tokens are sealed with ChaCha20-Poly1305, API tokens are hashed.
use anyhow::{anyhow, bail, Context};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Seals and opens secrets stored in the database.
#[derive(Clone)]
pub struct Cipher {
    aead: ChaCha20Poly1305,
    /// Signs what Chatwire hands out and takes back (web chat visitor tokens); derived from the
    /// same secret key, so every replica signs alike.
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

impl Cipher {
    /// From 32 key bytes written as 64 hex characters or base64.
    pub fn from_key_text(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| B64.decode(text).ok())
            .ok_or_else(|| anyhow!("secret key must be 64 hex characters or base64"))?;
        if bytes.len() != 32 {
            bail!("secret key must be 32 bytes, got {}", bytes.len());
        }
        let mut derive = Sha256::new();
        derive.update(b"chatwire signing key v1\0");
        derive.update(&bytes);
        Ok(Self {
            aead: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
            mac_key: derive.finalize().into(),
        })
    }

    /// Reads the key file, creating it with a random key (mode 0600) on first start.
    pub fn from_key_file(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            let mut key = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            write_private(path, hex::encode(key).as_bytes())
                .with_context(|| format!("creating key file {}", path.display()))?;
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key file {}", path.display()))?;
        Self::from_key_text(&text)
    }

    /// HMAC-SHA256 of `data` under the signing key, hex.
    pub fn sign(&self, data: &str) -> String {
        use hmac::{Hmac, Mac};
        // HMAC takes keys of any length: this never fails.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key) else {
            return String::new();
        };
        mac.update(data.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` is [`Cipher::sign`] of `data` (compared in constant time).
    pub fn verify(&self, data: &str, signature: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.sign(data);
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    }

    /// `base64(nonce || ciphertext)`.
    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        B64.encode(out)
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<String> {
        let raw = B64.decode(sealed).context("sealed secret is not base64")?;
        if raw.len() < 12 {
            bail!("sealed secret too short");
        }
        let (nonce, body) = raw.split_at(12);
        let plain = self
            .aead
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| {
                anyhow!("secret does not open with this key (CHATWIRE_SECRET_KEY changed?)")
            })?;
        String::from_utf8(plain).context("sealed secret is not UTF-8")
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Hex SHA-256 of an API token: tokens are random and long, so a fast hash is enough.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_and_hides_plaintext() {
        let cipher = Cipher::from_key_text(&"11".repeat(32)).expect("key");
        let sealed = cipher.seal("twilio-auth-token");
        assert!(!sealed.contains("twilio-auth-token"));
        assert_eq!(cipher.open(&sealed).expect("open"), "twilio-auth-token");
        let other = Cipher::from_key_text(&"22".repeat(32)).expect("key");
        assert!(other.open(&sealed).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.key");
        let a = Cipher::from_key_file(&path).expect("create");
        let b = Cipher::from_key_file(&path).expect("reuse");
        assert_eq!(b.open(&a.seal("x")).expect("open"), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
