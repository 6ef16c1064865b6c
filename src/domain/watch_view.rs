//! A watch as clients see it. Secrets are write-only: a view carries every setting a client
//! wrote except the secrets, and of each secret only whether one is stored. The service hands
//! front doors views, never a [`Watch`], so no front door can echo a (sealed) secret back.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Watch, WatchMethod};

/// Everything a client may read of a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchView {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub method: WatchMethod,
    pub enabled: bool,
    /// `None` when the watch sends no Basic credentials (no username).
    pub basic_auth: Option<BasicAuthView>,
    pub headers: Vec<(String, String)>,
    pub schema: String,
    pub oauth2: Option<OAuth2View>,
    pub signature_enabled: bool,
    pub crypto_key_ids: Vec<Uuid>,
    pub add_previous_data: bool,
    /// Why the service disabled the watch; empty when it did not.
    pub disabled_reason: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub last_success_time: Option<DateTime<Utc>>,
    pub last_failure_time: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
}

/// Basic credentials without the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuthView {
    pub username: String,
    pub password_set: bool,
}

/// OAuth2 credentials without the client secret and the refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2View {
    pub grant_type: String,
    pub client_id: String,
    pub auth_url: String,
    pub access_token_url: String,
    pub scope: String,
    pub client_secret_set: bool,
    pub refresh_token_set: bool,
}

impl From<&Watch> for WatchView {
    fn from(watch: &Watch) -> Self {
        let settings = &watch.settings;
        WatchView {
            id: watch.id,
            name: settings.name.clone(),
            address: settings.address.clone(),
            method: settings.method,
            enabled: settings.enabled,
            basic_auth: (!settings.basic_username.is_empty()).then(|| BasicAuthView {
                username: settings.basic_username.clone(),
                password_set: settings.basic_password.is_some(),
            }),
            headers: settings.headers.clone(),
            schema: settings.schema.clone(),
            oauth2: settings.oauth2.as_ref().map(|oauth2| OAuth2View {
                grant_type: oauth2.grant_type.clone(),
                client_id: oauth2.client_id.clone(),
                auth_url: oauth2.auth_url.clone(),
                access_token_url: oauth2.access_token_url.clone(),
                scope: oauth2.scope.clone(),
                client_secret_set: oauth2.client_secret.is_some(),
                refresh_token_set: oauth2.refresh_token.is_some(),
            }),
            signature_enabled: settings.signature_enabled,
            crypto_key_ids: settings.crypto_key_ids.clone(),
            add_previous_data: settings.add_previous_data,
            disabled_reason: watch.disabled_reason.clone(),
            create_time: watch.create_time,
            update_time: watch.update_time,
            last_success_time: watch.last_success_time,
            last_failure_time: watch.last_failure_time,
            consecutive_failures: watch.consecutive_failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OAuth2Settings, Position, WatchSettings};

    const SEALED: &[u8] = b"sealed secret bytes";

    fn watch(basic_username: &str, oauth2: Option<OAuth2Settings>) -> Watch {
        let now = Utc::now();
        Watch {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            settings: WatchSettings {
                name: "hook".into(),
                address: "https://example.com/hook".into(),
                method: WatchMethod::Post,
                enabled: true,
                basic_username: basic_username.into(),
                basic_password: Some(SEALED.to_vec()),
                headers: Vec::new(),
                schema: String::new(),
                oauth2,
                signature_enabled: false,
                crypto_key_ids: Vec::new(),
                add_previous_data: false,
            },
            disabled_reason: String::new(),
            create_time: now,
            update_time: now,
            cursor: Position::default(),
            attempts: 0,
            last_success_time: None,
            last_failure_time: None,
            consecutive_failures: 0,
        }
    }

    fn oauth2(client_secret: Option<&[u8]>, refresh_token: Option<&[u8]>) -> OAuth2Settings {
        OAuth2Settings {
            grant_type: "client_credentials".into(),
            client_id: "client".into(),
            auth_url: String::new(),
            access_token_url: "https://example.com/token".into(),
            scope: "calls".into(),
            client_secret: client_secret.map(<[u8]>::to_vec),
            refresh_token: refresh_token.map(<[u8]>::to_vec),
        }
    }

    /// Whether the sealed bytes appear anywhere in `view`, as `Debug` (a log line) prints them.
    fn shows_sealed_bytes(view: &WatchView) -> bool {
        format!("{view:?}").contains(&format!("{SEALED:?}"))
    }

    #[test]
    fn a_view_shows_whether_a_basic_password_is_stored_but_not_the_password() {
        let view = WatchView::from(&watch("user", None));
        assert_eq!(
            view.basic_auth,
            Some(BasicAuthView {
                username: "user".into(),
                password_set: true,
            })
        );
        assert!(!shows_sealed_bytes(&view));
    }

    #[test]
    fn a_view_shows_which_oauth2_secrets_are_stored_but_not_the_secrets() {
        let view = WatchView::from(&watch("", Some(oauth2(Some(SEALED), None))));
        let oauth2 = view.oauth2.as_ref().map(|oauth2| {
            (
                oauth2.client_id.as_str(),
                oauth2.client_secret_set,
                oauth2.refresh_token_set,
            )
        });
        assert_eq!(oauth2, Some(("client", true, false)));
        assert!(!shows_sealed_bytes(&view));
    }

    #[test]
    fn a_watch_without_a_basic_username_shows_no_basic_credentials() {
        assert_eq!(WatchView::from(&watch("", None)).basic_auth, None);
    }
}
