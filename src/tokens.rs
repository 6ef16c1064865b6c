//! Opaque, tamper-evident tokens (page tokens, sync tokens).
//!
//! A token is `base64url(json payload ‖ HMAC-SHA256(kind ‖ payload)[..16])`. The key lives in
//! the database (`server_secrets`), so every replica issues tokens the others accept. The kind
//! is part of the MAC, so a page token can never be replayed as a sync token.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Serialize};
use sha2::Sha256;

use crate::Error;

const MAC_LEN: usize = 16;
/// Tokens longer than this are refused before any decoding work.
const MAX_TOKEN_LEN: usize = 4096;

/// Seals and opens tokens with the service's shared key.
#[derive(Clone)]
pub struct TokenSealer {
    /// HMAC-SHA256 keyed once with the shared key, cloned for each token.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TokenSealer { key: <redacted> }")
    }
}

impl TokenSealer {
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        let keyed = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|error| Error::Internal(anyhow::anyhow!("token key refused: {error}")))?;
        Ok(TokenSealer { keyed })
    }

    pub fn seal<T: Serialize>(&self, kind: &str, payload: &T) -> Result<String, Error> {
        let mut bytes = serde_json::to_vec(payload).map_err(|error| {
            Error::Internal(anyhow::anyhow!("cannot serialize a {kind} token: {error}"))
        })?;
        let mac = self.mac(kind, &bytes);
        bytes.extend_from_slice(&mac);
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The payload, or `None` when the token is malformed, forged or of another kind.
    pub fn open<T: DeserializeOwned>(&self, kind: &str, token: &str) -> Option<T> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let split = bytes.len().checked_sub(MAC_LEN)?;
        let (payload, mac) = bytes.split_at(split);
        let mut verifier = self.hmac(kind);
        verifier.update(payload);
        verifier.verify_truncated_left(mac).ok()?;
        serde_json::from_slice(payload).ok()
    }

    fn mac(&self, kind: &str, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.hmac(kind);
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut truncated = [0; MAC_LEN];
        truncated.copy_from_slice(&full[..MAC_LEN]);
        truncated
    }

    fn hmac(&self, kind: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_its_kind_and_key() {
        let sealer = TokenSealer::new(b"key one").unwrap();
        let token = sealer.seal("page", &(7_i64, "x")).unwrap();
        assert_eq!(
            sealer.open::<(i64, String)>("page", &token),
            Some((7, "x".into()))
        );
        assert_eq!(sealer.open::<(i64, String)>("sync", &token), None);
        let other = TokenSealer::new(b"key two").unwrap();
        assert_eq!(other.open::<(i64, String)>("page", &token), None);
    }

    #[test]
    fn a_tampered_or_garbage_token_does_not_open() {
        let sealer = TokenSealer::new(b"key").unwrap();
        let token = sealer.seal("page", &1_i64).unwrap();
        let mut tampered = token.into_bytes();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(sealer.open::<i64>("page", &tampered), None);
        for garbage in ["", "!!!", "AAAA", &"A".repeat(10_000)] {
            assert_eq!(sealer.open::<i64>("page", garbage), None);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_opens_to_nothing(token in "\\PC{0,6000}") {
            let sealer = TokenSealer::new(b"key").unwrap();
            proptest::prop_assert_eq!(sealer.open::<serde_json::Value>("page", &token), None);
        }

        #[test]
        fn a_token_with_any_byte_flipped_does_not_open(index in 0_usize..64, bit in 0_u8..8) {
            let sealer = TokenSealer::new(b"key").unwrap();
            let token = sealer.seal("page", &("cursor", 42_i64)).unwrap();
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
            let index = index % bytes.len();
            bytes[index] ^= 1 << bit;
            let forged = URL_SAFE_NO_PAD.encode(bytes);
            proptest::prop_assert_eq!(sealer.open::<(String, i64)>("page", &forged), None);
        }
    }
}
