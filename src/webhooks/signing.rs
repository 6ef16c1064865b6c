//! Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, one per key,
//! space-separated, so a receiver can rotate keys without downtime.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::Error;

const SECRET_PREFIX: &str = "whsec_";

/// 32 random bytes for a new signing key.
pub fn new_key_secret() -> Vec<u8> {
    let mut secret = vec![0_u8; 32];
    rand::rng().fill_bytes(&mut secret);
    secret
}

/// A key secret as Standard Webhooks libraries take it: `whsec_<base64>`.
pub fn display_secret(secret: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(secret))
}

/// The `webhook-signature` header value for `body`, one signature per key.
pub fn signature_header(
    keys: &[Vec<u8>],
    event_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, Error> {
    let signatures = keys
        .iter()
        .map(|key| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|error| {
                Error::Internal(anyhow::anyhow!("signing key refused: {error}"))
            })?;
            mac.update(event_id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            Ok(format!(
                "v1,{}",
                STANDARD.encode(mac.finalize().into_bytes())
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(signatures.join(" "))
}
