//! Validated domain types: the ids of each kind of thing, what a call is once its input has been checked, the positions of
//! changes in the change log, and watches (as clients write them, as they are stored, and as
//! clients see them).
//!
//! Every constructor here takes the request's field path, so a rejection names the field.

mod call;
mod ids;
mod phone;
mod position;
mod start;
mod watch;
mod watch_draft;
mod watch_view;

pub use call::{Call, CallFields, CallRecord, CallStatus, CallType, MAX_DURATION};
pub use ids::{ApiKeyId, CallId, CryptoKeyId, DeliveryId, TenantId, WatchId};
pub use phone::{digits_of, PhoneNumber};
pub use position::{Cursor, Position};
pub use start::{is_timestamp, parse_time_zone, write_date_time_text, CallStart, DateTimeText};
pub use watch::{
    CryptoKey, Delivery, DeliveryOutcome, OAuth2Settings, Watch, WatchMethod, WatchSettings,
};
pub use watch_draft::{BasicAuthDraft, OAuth2Draft, WatchDraft, WatchPatch};
pub use watch_view::{BasicAuthView, OAuth2View, WatchView};
