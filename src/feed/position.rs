//! Positions in the change log and the sync tokens that carry them.
//!
//! A change's position is `(change_tx, change_seq)`: the id of the transaction that wrote it
//! and a sequence number. Readers only read positions whose transaction is older than the
//! oldest one still in flight (`pg_snapshot_xmin`), so everything below that barrier is final:
//! a change that commits late can never appear behind a reader's cursor.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    tokens::{self, TokenSealer},
    Error,
};

const SYNC_TOKEN_KIND: &str = "sync";

/// A point in the change log; "after" a position means every change ordered above it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
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

/// Changes a reader already has, exactly: every position up to `after`, plus the few positions
/// above it that it saw because they committed while an older transaction was still in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub after: Position,
    pub seen: Vec<Position>,
}

impl Cursor {
    /// Most positions a cursor lists above `after`; past that, a few changes may be sent twice
    /// (at least once, never lost). Only a long-running writing transaction gets near it.
    pub const MAX_SEEN: usize = 64;

    pub fn at(after: Position) -> Self {
        Cursor {
            after,
            seen: Vec::new(),
        }
    }

    pub fn has_seen(&self, position: Position) -> bool {
        position <= self.after || self.seen.contains(&position)
    }

    /// Everything up to `position` is now had; positions it passes leave `seen`.
    pub fn advance(&mut self, position: Position) {
        if position > self.after {
            self.after = position;
            self.seen.retain(|seen| *seen > position);
        }
    }
}

/// What a sync token stands for: every change of a tenant (for these filters) up to a cursor.
/// The token carries the cursor alone; the tenant and filters are its binding (see
/// [`crate::tokens`]), checked when it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncToken {
    pub tenant_id: Uuid,
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
        tenant_id: Uuid,
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

    fn at(tx: i64, seq: i64) -> Position {
        Position { tx, seq }
    }

    #[test]
    fn a_cursor_has_what_is_below_it_and_what_it_lists_above() {
        let cursor = Cursor {
            after: at(10, 5),
            seen: vec![at(12, 1)],
        };
        assert!(cursor.has_seen(at(9, 99)));
        assert!(cursor.has_seen(at(10, 5)));
        assert!(!cursor.has_seen(at(10, 6)));
        assert!(cursor.has_seen(at(12, 1)));
        assert!(!cursor.has_seen(at(11, 1)));
    }

    #[test]
    fn a_sync_token_of_the_first_format_opens_at_the_start_of_the_log() {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

        let sealer = TokenSealer::new(b"key").unwrap();
        let tenant = Uuid::new_v4();
        let first_format = URL_SAFE_NO_PAD.encode(br#"{"tenant_id":"x","cursor":{}}"#);
        let opened = SyncToken::open(&sealer, "sync_token", &first_format, tenant, "", "");
        assert_eq!(opened.unwrap().cursor, Cursor::default());
        let garbage = SyncToken::open(&sealer, "sync_token", "AAAA", tenant, "", "");
        assert!(garbage.is_err());
    }

    #[test]
    fn advancing_forgets_seen_positions_it_passes() {
        let mut cursor = Cursor {
            after: at(10, 5),
            seen: vec![at(12, 1), at(14, 1)],
        };
        cursor.advance(at(13, 0));
        assert_eq!(cursor.seen, [at(14, 1)]);
        cursor.advance(at(1, 1));
        assert_eq!(cursor.after, at(13, 0), "never moves back");
    }
}
