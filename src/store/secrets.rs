//! Secrets every replica must share, created by whichever replica needs them first.

use rand::RngCore;

use super::Store;
use crate::Error;

impl Store {
    /// The secret named `name`, created with 32 random bytes when it does not exist yet.
    pub async fn shared_secret(&self, name: &str) -> Result<Vec<u8>, Error> {
        let client = self.client().await?;
        let mut candidate = vec![0_u8; 32];
        rand::rng().fill_bytes(&mut candidate);
        client
            .execute(
                "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&name, &candidate],
            )
            .await?;
        let row = client
            .query_one(
                "SELECT secret FROM server_secrets WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(row.get(0))
    }
}
