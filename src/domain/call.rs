//! A call record: the writable fields a client sends, and the stored call around them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{CallId, CallStart, PhoneNumber};

/// The longest call we accept: anything longer is a client bug, not a phone call.
pub const MAX_DURATION: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// The outcome of a call (the seed's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    Completed,
    NoAnswered,
    Message,
    WrongNumber,
    Busy,
    Abandoned,
}

/// How a call was placed (the seed's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallType {
    ClickToCall,
    CallTracking,
}

/// A voice recording of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub mime_type: String,
    pub url: String,
}

/// Every field a client may write, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFields {
    pub button_id: String,
    pub client_id: String,
    pub caller_number: PhoneNumber,
    pub called_number: PhoneNumber,
    pub tracking_number: Option<PhoneNumber>,
    pub start: CallStart,
    pub duration: Duration,
    pub status: Option<CallStatus>,
    pub external_id: String,
    pub call_type: Option<CallType>,
    pub record: Option<CallRecord>,
}

impl CallFields {
    /// The digits of the three numbers, joined by `|` so a search never spans two numbers.
    pub fn number_digits(&self) -> String {
        let tracking = self
            .tracking_number
            .as_ref()
            .map(PhoneNumber::digits)
            .unwrap_or_default();
        format!(
            "{}|{}|{}",
            self.caller_number.digits(),
            self.called_number.digits(),
            tracking
        )
    }
}

/// A stored call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: CallId,
    pub fields: CallFields,
    /// The instant `fields.start` denotes.
    pub start_time: DateTime<Utc>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Bumped by every update; the etag clients see.
    pub version: i64,
    /// Set on tombstones.
    pub delete_time: Option<DateTime<Utc>>,
}

impl Call {
    pub fn etag(&self) -> String {
        self.version.to_string()
    }
}
