//! The change feed: sync tokens, the per-process hub that reads the change log
//! once and fans it out, and the `WatchCalls` streams that follow it.
//!
//! The change log in PostgreSQL is the truth. LISTEN/NOTIFY only says "read now": the hub
//! subscribes to the process's one listener connection ([`crate::store::Notifications`],
//! shared with the auth cache and the webhook worker); a poll every few hundred milliseconds
//! covers lost notifications, and each reconnect of the listener is followed by a catch-up
//! read.

mod hub;
mod sync_token;
mod watch;

pub use hub::{Feed, FeedSettings};
pub use sync_token::SyncToken;
pub use watch::{FeedEvent, StartFrom, WatchFilters, WatchStream};
