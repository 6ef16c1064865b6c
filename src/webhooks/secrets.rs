//! Write-only secrets at rest: AES-256-GCM under `CALLSD_SECRET_KEY`, stored as nonce || ciphertext.

use aes_gcm::{
    aead::{Aead, Payload},
    Aes256Gcm, Key, KeyInit, Nonce,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use rand::RngCore;

use crate::Error;

const NONCE_LEN: usize = 12;

/// The 32-byte key secrets are encrypted with. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("must be 32 bytes, not {}", bytes.len()))?;
        Ok(SecretKey(bytes))
    }
}

/// Parses `CALLSD_SECRET_KEY`: base64 (standard alphabet) of exactly 32 bytes.
pub fn parse_secret_key(text: &str) -> Result<SecretKey, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "must be base64 of 32 random bytes (openssl rand -base64 32)".to_owned())?;
    SecretKey::from_bytes(&bytes)
}

/// Encrypts and decrypts secrets; `context` binds a ciphertext to its owner (the tenant id), so a
/// ciphertext copied to another tenant's row does not decrypt.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl SecretBox {
    pub fn new(key: &SecretKey) -> Self {
        SecretBox {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key.0)),
        }
    }

    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0_u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| Error::Internal(anyhow::anyhow!("AES-GCM refused to encrypt a secret")))?;
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let broken = || {
            Error::Internal(anyhow::anyhow!(
                "a stored secret does not decrypt: was CALLSD_SECRET_KEY changed?"
            ))
        };
        if sealed.len() < NONCE_LEN {
            return Err(broken());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| broken())
    }

    /// A sealed UTF-8 secret, opened.
    pub fn open_text(&self, context: &[u8], sealed: &[u8]) -> Result<String, Error> {
        String::from_utf8(self.open(context, sealed)?)
            .map_err(|_| Error::Internal(anyhow::anyhow!("a stored secret is not UTF-8")))
    }
}
