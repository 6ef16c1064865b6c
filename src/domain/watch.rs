//! Watches as the service keeps them: validated settings with their secrets sealed, the
//! delivery state, signing keys and the delivery log. The store reads and writes these; the
//! service and the webhook workers use them; no transport type appears here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Position;

/// How a watch sends its requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WatchMethod {
    #[default]
    Post,
    Put,
    Patch,
    Delete,
}

/// OAuth2 settings of a watch; the two secrets are sealed.
///
/// Serialised (without the secrets) as the watch's `oauth2` column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct OAuth2Settings {
    pub grant_type: String,
    pub client_id: String,
    pub auth_url: String,
    pub access_token_url: String,
    pub scope: String,
    #[serde(skip)]
    pub client_secret: Option<Vec<u8>>,
    #[serde(skip)]
    pub refresh_token: Option<Vec<u8>>,
}

/// Everything a client writes on a watch, validated; secrets sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    pub name: String,
    pub address: String,
    pub method: WatchMethod,
    pub enabled: bool,
    pub basic_username: String,
    pub basic_password: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub schema: String,
    pub oauth2: Option<OAuth2Settings>,
    pub signature_enabled: bool,
    pub crypto_key_ids: Vec<Uuid>,
    pub add_previous_data: bool,
}

/// A stored watch with its delivery state.
#[derive(Debug, Clone)]
pub struct Watch {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub settings: WatchSettings,
    pub disabled_reason: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Every change at or below this position is final for this watch.
    pub cursor: Position,
    /// Attempts already made for the change after the cursor.
    pub attempts: i32,
    pub last_success_time: Option<DateTime<Utc>>,
    pub last_failure_time: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
}

/// A signing key, without its secret (which is shown once, when the key is created).
#[derive(Debug, Clone)]
pub struct CryptoKey {
    pub id: Uuid,
    pub name: String,
    pub create_time: DateTime<Utc>,
}

/// What an attempt meant for its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Succeeded,
    Retrying,
    Failed,
}

/// One attempt, as the log keeps it (request headers without credentials).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub watch_id: Uuid,
    pub tenant_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub call_id: Uuid,
    pub position: Position,
    pub attempt: i32,
    pub attempt_time: DateTime<Utc>,
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
    pub response_status: i32,
    pub response_body: String,
    pub error: String,
    pub duration: Duration,
    pub outcome: DeliveryOutcome,
    pub manual: bool,
}
