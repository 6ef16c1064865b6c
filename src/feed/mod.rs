//! The change feed: sync tokens, the per-process hub that reads the change log
//! once and fans it out, and the `WatchCalls` streams that follow it.
//!
//! The change log in PostgreSQL is the truth. LISTEN/NOTIFY (on one dedicated connection per
//! process) only says "read now"; a poll every few hundred milliseconds covers lost
//! notifications, and a lost listener connection is followed by a catch-up read.

mod hub;
mod sync_token;
mod watch;

pub use hub::{Feed, FeedSettings};
pub use sync_token::SyncToken;
pub use watch::{FeedEvent, StartFrom, WatchFilters, WatchStream};
