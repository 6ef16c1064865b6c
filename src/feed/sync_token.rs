//! Sync tokens: a tenant's cursor in the change log, sealed for a client to hand back.

use crate::{
    domain::{Cursor, TenantId},
    tokens::{self, TokenSealer},
    Error,
};

const SYNC_TOKEN_KIND: &str = "sync";

/// What a sync token stands for: every change of a tenant (for these filters) up to a cursor.
/// The token carries the cursor alone; the tenant and filters are its binding (see
/// [`crate::tokens`]), checked when it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncToken {
    pub tenant_id: TenantId,
    pub tool_id: String,
    pub search_digits: String,
    pub cursor: Cursor,
}

impl SyncToken {
    pub fn seal(&self, sealer: &TokenSealer) -> Result<String, Error> {
        let binding = (self.tenant_id, &self.tool_id, &self.search_digits);
        sealer.seal(SYNC_TOKEN_KIND, &binding, &self.cursor)
    }

    /// Opens `token` for a request of `tenant_id` with these filters; `field` names it in errors.
    pub fn open(
        sealer: &TokenSealer,
        field: &str,
        token: &str,
        tenant_id: TenantId,
        tool_id: &str,
        search_digits: &str,
    ) -> Result<Self, Error> {
        let opened = sealer.open(SYNC_TOKEN_KIND, &(tenant_id, tool_id, search_digits), token);
        // A client that stored a sync token before the upgrade to opaque tokens must not be
        // refused: its token reads as "from the start of the log", which replays every change
        // still kept, or is SYNC_TOKEN_EXPIRED past compaction, and either way the client
        // converges without an error it would take for a bug.
        let cursor: Cursor = opened
            .or_else(|| tokens::is_first_format(token).then(Cursor::default))
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    "is not a sync token issued to this tenant for these filters: send the \
                     tool_id and search it was issued with",
                )
            })?;
        Ok(SyncToken {
            tenant_id,
            tool_id: tool_id.to_owned(),
            search_digits: search_digits.to_owned(),
            cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_token_of_the_first_format_opens_at_the_start_of_the_log() {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

        let sealer = TokenSealer::new(b"key").unwrap();
        let tenant = TenantId::new_v7();
        let first_format = URL_SAFE_NO_PAD.encode(br#"{"tenant_id":"x","cursor":{}}"#);
        let opened = SyncToken::open(&sealer, "sync_token", &first_format, tenant, "", "");
        assert_eq!(opened.unwrap().cursor, Cursor::default());
        let garbage = SyncToken::open(&sealer, "sync_token", "AAAA", tenant, "", "");
        assert!(garbage.is_err());
    }
}
