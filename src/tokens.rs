//! Opaque, tamper-evident tokens (page tokens, sync tokens).
//!
//! A token is `base64url(version ‖ nonce ‖ AES-256-GCM-SIV(payload))`, 29 bytes plus the
//! payload:
//! - **opaque**: the payload (a cursor, postcard-encoded) is encrypted, so a client learns
//!   nothing from a token and cannot build one;
//! - **tamper-evident**: any changed byte fails authentication;
//! - **bound**: what a token is only valid with (its kind, the tenant, the request's filters)
//!   is authenticated as associated data but not carried, so a token replayed by another
//!   tenant, with other filters, or as another kind fails to open, and tokens stay short.
//!
//! The key is derived from a secret in the database (`server_secrets`), so every replica
//! issues tokens the others accept. GCM-SIV rather than GCM: tokens are issued for every
//! page, and with random 96-bit nonces GCM's safe limit (2^32 messages per key) is within
//! reach of a busy service; GCM-SIV stays safe far beyond it, and even a repeated nonce would
//! only reveal that two tokens are equal.

use aes_gcm_siv::{
    aead::{Aead, Payload},
    Aes256GcmSiv, KeyInit, Nonce,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{de::DeserializeOwned, Serialize};
use sha2::Sha256;

use crate::Error;

/// The first byte of every token: a new format gets a new version, and old tokens fail to open
/// (clients then list from the start) instead of being misread.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
/// Tokens longer than this are refused before any decoding work.
const MAX_TOKEN_LEN: usize = 4096;
/// Derives the token key from the shared secret, so that secret is never used directly.
const KEY_PURPOSE: &[u8] = b"callsd token encryption v1";

/// Seals and opens tokens with the service's shared key.
#[derive(Clone)]
pub struct TokenSealer {
    cipher: Aes256GcmSiv,
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TokenSealer { key: <redacted> }")
    }
}

impl TokenSealer {
    pub fn new(shared_secret: &[u8]) -> Result<Self, Error> {
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(shared_secret)
            .map_err(|error| Error::Internal(anyhow::anyhow!("token key refused: {error}")))?;
        derive.update(KEY_PURPOSE);
        let key = derive.finalize().into_bytes();
        let cipher = Aes256GcmSiv::new_from_slice(&key)
            .map_err(|error| Error::Internal(anyhow::anyhow!("token key refused: {error}")))?;
        Ok(TokenSealer { cipher })
    }

    /// A token of `kind` carrying `payload`, valid only with an equal `binding`.
    pub fn seal<B: Serialize + ?Sized, T: Serialize>(
        &self,
        kind: &str,
        binding: &B,
        payload: &T,
    ) -> Result<String, Error> {
        let encode_error = |error: postcard::Error| {
            Error::Internal(anyhow::anyhow!("cannot encode a {kind} token: {error}"))
        };
        let plaintext = postcard::to_allocvec(payload).map_err(encode_error)?;
        let aad = associated_data(kind, binding).map_err(encode_error)?;
        let mut nonce = [0_u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Internal(anyhow::anyhow!("cannot seal a {kind} token")))?;
        let mut token = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        token.push(VERSION);
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&ciphertext);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    /// The payload, or `None` when the token is malformed, forged, of another kind or version,
    /// or sealed with another binding.
    pub fn open<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        kind: &str,
        binding: &B,
        token: &str,
    ) -> Option<T> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = associated_data(kind, binding).ok()?;
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()?;
        postcard::from_bytes(&plaintext).ok()
    }
}

/// Whether `token` is of the first format, base64 of readable JSON, which clients may still
/// hold from before an upgrade. Its contents are not trusted; callers decide what it means.
pub fn is_first_format(token: &str) -> bool {
    token.len() <= MAX_TOKEN_LEN
        && URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|bytes| bytes.first() == Some(&b'{'))
}

/// `version ‖ kind ‖ binding`, postcard-encoded: strings are length-prefixed, so no kind and
/// binding pair can pose as another.
fn associated_data<B: Serialize + ?Sized>(
    kind: &str,
    binding: &B,
) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(&(VERSION, kind, binding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_its_kind_binding_and_key() {
        let sealer = TokenSealer::new(b"key one").unwrap();
        let token = sealer.seal("page", "tenant a", &(7_i64, "x")).unwrap();
        let open = |sealer: &TokenSealer, kind, binding| {
            sealer.open::<str, (i64, String)>(kind, binding, &token)
        };
        assert_eq!(open(&sealer, "page", "tenant a"), Some((7, "x".into())));
        assert_eq!(open(&sealer, "sync", "tenant a"), None);
        assert_eq!(open(&sealer, "page", "tenant b"), None);
        assert_eq!(open(&sealer, "page", ""), None);
        let other = TokenSealer::new(b"key two").unwrap();
        assert_eq!(open(&other, "page", "tenant a"), None);
    }

    #[test]
    fn a_token_reveals_neither_its_payload_nor_its_binding_and_stays_short() {
        let sealer = TokenSealer::new(b"key").unwrap();
        let secret = "cursor-text-nobody-should-read";
        let binding = "tenant-id-nobody-should-read";
        let token = sealer.seal("page", binding, &secret).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for hidden in [secret.as_bytes(), binding.as_bytes()] {
            assert!(!bytes
                .windows(8)
                .any(|window| hidden.windows(8).any(|h| h == window)));
        }
        assert_eq!(bytes.len(), 1 + NONCE_LEN + 1 + secret.len() + 16);
        let again = sealer.seal("page", binding, &secret).unwrap();
        assert_ne!(token, again, "a fresh nonce for each token");
    }

    #[test]
    fn a_tampered_or_garbage_token_does_not_open() {
        let sealer = TokenSealer::new(b"key").unwrap();
        let token = sealer.seal("page", &(), &1_i64).unwrap();
        let mut tampered = token.into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(sealer.open::<(), i64>("page", &(), &tampered), None);
        for garbage in ["", "!!!", "AAAA", "eyJhIjoxfQ", &"A".repeat(10_000)] {
            assert_eq!(sealer.open::<(), i64>("page", &(), garbage), None);
        }
    }

    #[test]
    fn a_first_format_token_is_recognised_and_a_current_one_is_not() {
        let first_format = URL_SAFE_NO_PAD.encode(br#"{"tenant_id":"x"}"#);
        assert!(is_first_format(&first_format));
        let sealer = TokenSealer::new(b"key").unwrap();
        let current = sealer.seal("sync", &(), &1_i64).unwrap();
        assert!(!is_first_format(&current));
        assert!(!is_first_format("!!!"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_opens_to_nothing(token in "\\PC{0,6000}") {
            let sealer = TokenSealer::new(b"key").unwrap();
            proptest::prop_assert_eq!(sealer.open::<(), String>("page", &(), &token), None);
        }

        #[test]
        fn a_token_with_any_bit_flipped_does_not_open(index in 0_usize..64, bit in 0_u8..8) {
            let sealer = TokenSealer::new(b"key").unwrap();
            let token = sealer.seal("page", "tenant", &("cursor", 42_i64)).unwrap();
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
            let index = index % bytes.len();
            bytes[index] ^= 1 << bit;
            let forged = URL_SAFE_NO_PAD.encode(bytes);
            proptest::prop_assert_eq!(
                sealer.open::<str, (String, i64)>("page", "tenant", &forged),
                None
            );
        }
    }
}
