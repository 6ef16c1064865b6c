//! The proto messages and their conversion to service inputs, shared by both front doors
//! (gRPC and REST): one transport-free function per RPC that takes the request message, calls
//! the service and returns the response message. A door authenticates, decodes its wire form
//! into the request message, calls the function and maps the [`crate::Error`] it may return;
//! nothing here knows tonic or HTTP.
//!
//! Also the one table of field limits every request passes ([`check_request`]) and the
//! process-wide in-flight limit both doors share ([`InFlightLimit`]).

pub mod calls;
pub mod convert;
mod field_limits;
mod in_flight;
pub mod update_mask;
pub mod watch_convert;
pub mod watch_mask;
pub mod watches;

pub use field_limits::{check_message, check_request, descriptors, FieldLimit, FIELD_LIMITS};
pub use in_flight::InFlightLimit;
