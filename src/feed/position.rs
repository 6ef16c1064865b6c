//! Positions in the change log and the sync tokens that carry them.
//!
//! A change's position is `(change_tx, change_seq)`: the id of the transaction that wrote it
//! and a sequence number. Readers only read positions whose transaction is older than the
//! oldest one still in flight (`pg_snapshot_xmin`), so everything below that barrier is final:
//! a change that commits late can never appear behind a reader's cursor.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{tokens::TokenSealer, Error};

const SYNC_TOKEN_KIND: &str = "sync";

/// A point in the change log; "after" a position means every change ordered above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub tx: i64,
    pub seq: i64,
}

impl Position {
    /// The position just below `barrier_tx`: everything written by older transactions.
    pub fn below_barrier(barrier_tx: i64) -> Self {
        Position {
            tx: barrier_tx - 1,
            seq: i64::MAX,
        }
    }
}

/// What a sync token stands for: every change of a tenant (for these filters) up to a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncToken {
    pub tenant_id: Uuid,
    pub tool_id: String,
    pub search_digits: String,
    pub position: Position,
}

impl SyncToken {
    pub fn seal(&self, sealer: &TokenSealer) -> String {
        sealer.seal(SYNC_TOKEN_KIND, self)
    }

    /// Opens `token` for a request of `tenant_id` with these filters; `field` names it in errors.
    pub fn open(
        sealer: &TokenSealer,
        field: &str,
        token: &str,
        tenant_id: Uuid,
        tool_id: &str,
        search_digits: &str,
    ) -> Result<Self, Error> {
        let sync_token: SyncToken = sealer
            .open(SYNC_TOKEN_KIND, token)
            .filter(|sync_token: &SyncToken| sync_token.tenant_id == tenant_id)
            .ok_or_else(|| Error::invalid(field, "is not a sync token issued to this tenant"))?;
        if sync_token.tool_id != tool_id || sync_token.search_digits != search_digits {
            return Err(Error::invalid(
                field,
                "was issued for other filters: send the tool_id and search it was issued with",
            ));
        }
        Ok(sync_token)
    }
}
