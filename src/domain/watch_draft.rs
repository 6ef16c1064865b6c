//! A watch as a client writes it, before the service's rules apply: secrets in plain text
//! (empty means "keep the stored one"), and the patch that an update applies to a stored watch.

use std::fmt;

use super::{WatchMethod, WatchSettings};
use crate::error::Violations;

/// Every field a client may write on a watch.
#[derive(Debug, Default)]
pub struct WatchDraft {
    pub name: String,
    pub address: String,
    pub basic_auth: BasicAuthDraft,
    /// Extra request headers, as the client named them.
    pub headers: Vec<(String, String)>,
    pub schema: String,
    pub method: WatchMethod,
    pub enabled: bool,
    pub oauth2: Option<OAuth2Draft>,
    pub signature_enabled: bool,
    /// The signing keys' ids as written; the service reads them, naming each malformed one.
    pub crypto_key_ids: Vec<String>,
    pub add_previous_data: bool,
    /// Fields the front door could not read into this draft (an unknown enum number). The
    /// service reports them with its own findings, so that one answer names every bad field.
    pub unreadable: Violations,
}

/// Basic credentials; no username means none. `Debug` hides the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BasicAuthDraft {
    pub username: String,
    /// Plain text; empty keeps the stored password (where the rules allow).
    pub password: String,
}

/// OAuth2 credentials as written; the two secrets are plain text, empty keeps the stored one.
/// `Debug` hides the secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OAuth2Draft {
    pub grant_type: String,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    pub auth_url: String,
    pub access_token_url: String,
    pub scope: String,
}

/// How `Debug` shows a plain-text secret: whether there is one, never what it is.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

impl fmt::Debug for BasicAuthDraft {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("BasicAuthDraft")
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .finish()
    }
}

impl fmt::Debug for OAuth2Draft {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OAuth2Draft")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("auth_url", &self.auth_url)
            .field("access_token_url", &self.access_token_url)
            .field("scope", &self.scope)
            .finish()
    }
}

impl WatchDraft {
    /// The stored settings as a client could have written them, without the write-only
    /// secrets: an update starts from this and keeps the stored secrets it does not replace.
    pub fn from_stored(settings: &WatchSettings) -> Self {
        WatchDraft {
            name: settings.name.clone(),
            address: settings.address.clone(),
            basic_auth: BasicAuthDraft {
                username: settings.basic_username.clone(),
                password: String::new(),
            },
            headers: settings.headers.clone(),
            schema: settings.schema.clone(),
            method: settings.method,
            enabled: settings.enabled,
            oauth2: settings.oauth2.as_ref().map(|oauth2| OAuth2Draft {
                grant_type: oauth2.grant_type.clone(),
                client_id: oauth2.client_id.clone(),
                client_secret: String::new(),
                refresh_token: String::new(),
                auth_url: oauth2.auth_url.clone(),
                access_token_url: oauth2.access_token_url.clone(),
                scope: oauth2.scope.clone(),
            }),
            signature_enabled: settings.signature_enabled,
            crypto_key_ids: settings
                .crypto_key_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
            add_previous_data: settings.add_previous_data,
            unreadable: Violations::default(),
        }
    }
}

/// What an update replaces: each `Some` field replaces the stored one, `None` keeps it.
/// `Debug` hides the secrets.
#[derive(Default)]
pub struct WatchPatch {
    pub name: Option<String>,
    pub address: Option<String>,
    pub basic_username: Option<String>,
    pub basic_password: Option<String>,
    pub headers: Option<Vec<(String, String)>>,
    pub schema: Option<String>,
    pub method: Option<WatchMethod>,
    pub enabled: Option<bool>,
    /// `Some(None)` removes the OAuth2 credentials.
    pub oauth2: Option<Option<OAuth2Draft>>,
    pub signature_enabled: Option<bool>,
    pub crypto_key_ids: Option<Vec<String>>,
    pub add_previous_data: Option<bool>,
    /// As in [`WatchDraft::unreadable`]: values the front door could not read; reported with
    /// the rules' findings.
    pub unreadable: Violations,
    /// Fields the request asked to replace that a watch does not have (or may not write). These
    /// are reported alone, before any rule runs: the client must first say what it changes.
    pub unknown_fields: Violations,
}

impl fmt::Debug for WatchPatch {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WatchPatch")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("basic_username", &self.basic_username)
            .field(
                "basic_password",
                &self.basic_password.as_deref().map(redacted),
            )
            .field("headers", &self.headers)
            .field("schema", &self.schema)
            .field("method", &self.method)
            .field("enabled", &self.enabled)
            .field("oauth2", &self.oauth2)
            .field("signature_enabled", &self.signature_enabled)
            .field("crypto_key_ids", &self.crypto_key_ids)
            .field("add_previous_data", &self.add_previous_data)
            .field("unreadable", &self.unreadable)
            .field("unknown_fields", &self.unknown_fields)
            .finish()
    }
}

impl WatchPatch {
    /// True when the patch replaces nothing and found nothing wrong.
    pub fn is_empty(&self) -> bool {
        let WatchPatch {
            name,
            address,
            basic_username,
            basic_password,
            headers,
            schema,
            method,
            enabled,
            oauth2,
            signature_enabled,
            crypto_key_ids,
            add_previous_data,
            unreadable,
            unknown_fields,
        } = self;
        name.is_none()
            && address.is_none()
            && basic_username.is_none()
            && basic_password.is_none()
            && headers.is_none()
            && schema.is_none()
            && method.is_none()
            && enabled.is_none()
            && oauth2.is_none()
            && signature_enabled.is_none()
            && crypto_key_ids.is_none()
            && add_previous_data.is_none()
            && unreadable.is_empty()
            && unknown_fields.is_empty()
    }

    /// `draft` with this patch's fields replacing its own. The patch's unknown fields are
    /// not carried over: the service reports them before applying a patch.
    pub fn apply_to(self, mut draft: WatchDraft) -> WatchDraft {
        let replace = |into: &mut String, from: Option<String>| {
            if let Some(value) = from {
                *into = value;
            }
        };
        replace(&mut draft.name, self.name);
        replace(&mut draft.address, self.address);
        replace(&mut draft.basic_auth.username, self.basic_username);
        replace(&mut draft.basic_auth.password, self.basic_password);
        replace(&mut draft.schema, self.schema);
        if let Some(headers) = self.headers {
            draft.headers = headers;
        }
        if let Some(method) = self.method {
            draft.method = method;
        }
        if let Some(enabled) = self.enabled {
            draft.enabled = enabled;
        }
        if let Some(oauth2) = self.oauth2 {
            draft.oauth2 = oauth2;
        }
        if let Some(signature_enabled) = self.signature_enabled {
            draft.signature_enabled = signature_enabled;
        }
        if let Some(crypto_key_ids) = self.crypto_key_ids {
            draft.crypto_key_ids = crypto_key_ids;
        }
        if let Some(add_previous_data) = self.add_previous_data {
            draft.add_previous_data = add_previous_data;
        }
        draft.unreadable.extend(self.unreadable);
        draft
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> WatchSettings {
        WatchSettings {
            name: "hook".into(),
            address: "https://example.com/hook".into(),
            method: WatchMethod::Put,
            enabled: true,
            basic_username: "user".into(),
            basic_password: Some(vec![1, 2, 3]),
            headers: vec![("x-team".into(), "blue".into())],
            schema: String::new(),
            oauth2: None,
            signature_enabled: false,
            crypto_key_ids: Vec::new(),
            add_previous_data: true,
        }
    }

    #[test]
    fn a_draft_of_a_stored_watch_never_carries_its_secrets() {
        let draft = WatchDraft::from_stored(&stored());
        assert_eq!(draft.basic_auth.username, "user");
        assert!(draft.basic_auth.password.is_empty());
    }

    #[test]
    fn debug_never_shows_a_plain_text_secret() {
        let draft = WatchDraft {
            basic_auth: BasicAuthDraft {
                username: "user".into(),
                password: "basic-secret".into(),
            },
            oauth2: Some(OAuth2Draft {
                client_id: "client".into(),
                client_secret: "client-secret".into(),
                refresh_token: "refresh-secret".into(),
                ..OAuth2Draft::default()
            }),
            ..WatchDraft::default()
        };
        let patch = WatchPatch {
            basic_password: Some("patch-secret".into()),
            ..WatchPatch::default()
        };
        let shown = format!("{draft:?} {patch:?}");
        for secret in [
            "basic-secret",
            "client-secret",
            "refresh-secret",
            "patch-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("user") && shown.contains("client"));
    }

    #[test]
    fn a_patch_replaces_only_the_fields_it_sets() {
        let patch = WatchPatch {
            name: Some("renamed".into()),
            basic_password: Some("new-secret".into()),
            ..WatchPatch::default()
        };
        let draft = patch.apply_to(WatchDraft::from_stored(&stored()));
        assert_eq!(draft.name, "renamed");
        assert_eq!(draft.basic_auth.username, "user");
        assert_eq!(draft.basic_auth.password, "new-secret");
        assert_eq!(draft.address, "https://example.com/hook");
        assert_eq!(draft.method, WatchMethod::Put);
        assert!(draft.add_previous_data);
    }

    #[test]
    fn an_empty_patch_is_empty_and_one_with_a_bad_field_is_not() {
        assert!(WatchPatch::default().is_empty());
        let mut unknown_fields = Violations::default();
        unknown_fields.add("update_mask", "\"nope\" is not a writable field of Watch");
        let patch = WatchPatch {
            unknown_fields,
            ..WatchPatch::default()
        };
        assert!(!patch.is_empty());
    }
}
