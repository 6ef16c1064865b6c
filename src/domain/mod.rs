//! Validated domain types: what a call is once its input has been checked, and the
//! positions of changes in the change log.
//!
//! Every constructor here takes the request's field path, so a rejection names the field.

mod call;
mod phone;
mod position;
mod start;

pub use call::{Call, CallFields, CallRecord, CallStatus, CallType, MAX_DURATION};
pub use phone::{digits_of, PhoneNumber};
pub use position::{Cursor, Position};
pub use start::{is_timestamp, parse_time_zone, write_date_time_text, CallStart, DateTimeText};
