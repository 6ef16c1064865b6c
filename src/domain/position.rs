//! Positions in the change log and the cursors built on them, below both the store that
//! writes them and the feed and webhooks that follow them.
//!
//! A change's position is `(change_tx, change_seq)`: the id of the transaction that wrote it
//! and a sequence number. Readers only read positions whose transaction is older than the
//! oldest one still in flight (`pg_snapshot_xmin`), so everything below that barrier is final:
//! a change that commits late can never appear behind a reader's cursor.

use serde::{Deserialize, Serialize};

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
