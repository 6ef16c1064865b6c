//! Watch messages to validated settings and back. Secrets are sealed on the way in and never
//! on the way out; an empty secret in a request keeps the stored one.

use reqwest::header::{HeaderName, HeaderValue};

use super::convert::timestamp;
use crate::{
    domain::{
        CryptoKey, Delivery, DeliveryOutcome, OAuth2Settings, Watch, WatchMethod, WatchSettings,
    },
    error::Violations,
    pb::calls::v1 as pb,
    webhooks::{template::Template, Webhooks},
    Error,
};

/// Headers the service sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "content-length",
    "content-type",
    "host",
    "connection",
    "transfer-encoding",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];
const GRANT_TYPES: &[&str] = &["refresh_token", "client_credentials"];

/// Validates `watch` (in `field`, e.g. "watch") and seals its secrets for `tenant_id`.
/// `existing` supplies the stored secrets a request leaves empty.
pub async fn watch_settings(
    webhooks: &Webhooks,
    tenant_id: uuid::Uuid,
    watch: &pb::Watch,
    existing: Option<&WatchSettings>,
) -> Result<WatchSettings, Error> {
    let mut violations = Violations::default();
    let context = tenant_id.as_bytes();
    if watch.address.is_empty() {
        violations.add("watch.address", "is required");
    } else if let Err(error) = webhooks.guard.check_url(&watch.address).await {
        violations.add("watch.address", error);
    }
    let basic = watch.basic_auth.clone().unwrap_or_default();
    let basic_password = if basic.username.is_empty() {
        if !basic.password.is_empty() {
            violations.add("watch.basic_auth.username", "is required with a password");
        }
        None
    } else if basic.password.is_empty() {
        // A stored password goes only where it went before: a new address needs it again, so
        // an API key cannot redirect a write-only secret to a server of its choosing.
        let stored = existing.and_then(|existing| existing.basic_password.as_ref());
        let same_address = existing.is_some_and(|existing| existing.address == watch.address);
        if stored.is_some() && !same_address {
            violations.add(
                "watch.basic_auth.password",
                "must be sent again when the address changes",
            );
        }
        stored.filter(|_| same_address).cloned()
    } else {
        Some(webhooks.secrets.seal(context, basic.password.as_bytes())?)
    };
    for (index, header) in watch.http_request_headers.iter().enumerate() {
        let field = format!("watch.http_request_headers[{index}]");
        match HeaderName::from_bytes(header.name.as_bytes()) {
            Err(_) => violations.add(format!("{field}.name"), "is not an HTTP header name"),
            Ok(name) if RESERVED_HEADERS.contains(&name.as_str()) => violations.add(
                format!("{field}.name"),
                "is set by the service (use basic_auth or oauth2_auth for credentials)",
            ),
            Ok(_) => {}
        }
        if HeaderValue::from_str(&header.value).is_err() {
            violations.add(format!("{field}.value"), "is not a valid HTTP header value");
        }
    }
    if !watch.schema.is_empty() {
        if let Err(error) = Template::parse(&watch.schema) {
            violations.add("watch.schema", error);
        }
    }
    let method = match pb::WatchMethod::try_from(watch.method) {
        Ok(pb::WatchMethod::Unspecified | pb::WatchMethod::Post) => WatchMethod::Post,
        Ok(pb::WatchMethod::Put) => WatchMethod::Put,
        Ok(pb::WatchMethod::Patch) => WatchMethod::Patch,
        Ok(pb::WatchMethod::Delete) => WatchMethod::Delete,
        Err(_) => {
            violations.add(
                "watch.method",
                format!("{} is not a WatchMethod", watch.method),
            );
            WatchMethod::Post
        }
    };
    let enabled = match pb::WatchStatus::try_from(watch.status) {
        Ok(pb::WatchStatus::Disabled) => false,
        Ok(_) => true,
        Err(_) => {
            violations.add(
                "watch.status",
                format!("{} is not a WatchStatus", watch.status),
            );
            true
        }
    };
    let oauth2 = match watch
        .oauth2_auth
        .as_ref()
        .filter(|oauth2| **oauth2 != pb::OAuth2Auth::default())
    {
        None => None,
        Some(oauth2) => {
            if !basic.username.is_empty() {
                violations.add("watch.oauth2_auth", "cannot be used with basic_auth");
            }
            // Stored secrets go only to the token endpoint they were given for.
            let existing = existing
                .and_then(|existing| existing.oauth2.as_ref())
                .filter(|existing| existing.access_token_url == oauth2.access_token_url);
            violations.check(oauth2_settings(webhooks, context, oauth2, existing).await)
        }
    };
    let signature = watch.signature.clone().unwrap_or_default();
    let mut crypto_key_ids = Vec::new();
    for (index, id) in signature.crypto_key_ids.iter().enumerate() {
        match uuid::Uuid::parse_str(id) {
            Ok(id) => crypto_key_ids.push(id),
            Err(_) => violations.add(
                format!("watch.signature.crypto_key_ids[{index}]"),
                "is not a crypto key id",
            ),
        }
    }
    if signature.enabled && signature.crypto_key_ids.is_empty() {
        violations.add(
            "watch.signature.crypto_key_ids",
            "names no key; create one with CreateCryptoKey",
        );
    }
    let known = webhooks
        .store
        .crypto_key_secrets(tenant_id, &crypto_key_ids)
        .await?;
    for (index, id) in crypto_key_ids.iter().enumerate() {
        if !known.iter().any(|(known, _)| known == id) {
            violations.add(
                format!("watch.signature.crypto_key_ids[{index}]"),
                "no such crypto key",
            );
        }
    }
    violations.finish(|| WatchSettings {
        name: watch.name.clone(),
        address: watch.address.clone(),
        method,
        enabled,
        basic_username: basic.username.clone(),
        basic_password,
        headers: watch
            .http_request_headers
            .iter()
            .map(|header| (header.name.to_ascii_lowercase(), header.value.clone()))
            .collect(),
        schema: watch.schema.clone(),
        oauth2: oauth2.flatten(),
        signature_enabled: signature.enabled,
        crypto_key_ids,
        add_previous_data: watch.add_previous_data,
    })
}

async fn oauth2_settings(
    webhooks: &Webhooks,
    context: &[u8],
    oauth2: &pb::OAuth2Auth,
    existing: Option<&OAuth2Settings>,
) -> Result<Option<OAuth2Settings>, Error> {
    let mut violations = Violations::default();
    let grant_type = match oauth2.grant_type.as_str() {
        "" => "refresh_token",
        grant => grant,
    };
    if !GRANT_TYPES.contains(&grant_type) {
        violations.add(
            "watch.oauth2_auth.grant_type",
            "must be \"refresh_token\" or \"client_credentials\"",
        );
    }
    if oauth2.client_id.is_empty() {
        violations.add("watch.oauth2_auth.client_id", "is required");
    }
    if oauth2.access_token_url.is_empty() {
        violations.add("watch.oauth2_auth.access_token_url", "is required");
    } else if let Err(error) = webhooks.guard.check_url(&oauth2.access_token_url).await {
        violations.add("watch.oauth2_auth.access_token_url", error);
    }
    let seal = |plain: &str, stored: Option<&Vec<u8>>| {
        if plain.is_empty() {
            Ok(stored.cloned())
        } else {
            webhooks.secrets.seal(context, plain.as_bytes()).map(Some)
        }
    };
    let client_secret = seal(
        &oauth2.client_secret,
        existing.and_then(|existing| existing.client_secret.as_ref()),
    )?;
    let refresh_token = seal(
        &oauth2.refresh_token,
        existing.and_then(|existing| existing.refresh_token.as_ref()),
    )?;
    if grant_type == "refresh_token" && refresh_token.is_none() {
        violations.add(
            "watch.oauth2_auth.refresh_token",
            "is required with grant_type \"refresh_token\"",
        );
    }
    if grant_type == "client_credentials" && client_secret.is_none() {
        violations.add(
            "watch.oauth2_auth.client_secret",
            "is required with grant_type \"client_credentials\"",
        );
    }
    violations.finish(|| {
        Some(OAuth2Settings {
            grant_type: grant_type.to_owned(),
            client_id: oauth2.client_id.clone(),
            auth_url: oauth2.auth_url.clone(),
            access_token_url: oauth2.access_token_url.clone(),
            scope: oauth2.scope.clone(),
            client_secret,
            refresh_token,
        })
    })
}

/// A watch as clients see it: no secret, only whether one is stored.
pub fn watch_to_proto(watch: &Watch) -> pb::Watch {
    let settings = &watch.settings;
    pb::Watch {
        id: watch.id.to_string(),
        address: settings.address.clone(),
        name: settings.name.clone(),
        basic_auth: (!settings.basic_username.is_empty()).then(|| pb::BasicAuth {
            username: settings.basic_username.clone(),
            password: String::new(),
            password_set: settings.basic_password.is_some(),
        }),
        http_request_headers: settings
            .headers
            .iter()
            .map(|(name, value)| pb::HttpRequestHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        schema: settings.schema.clone(),
        method: match settings.method {
            WatchMethod::Post => pb::WatchMethod::Post,
            WatchMethod::Put => pb::WatchMethod::Put,
            WatchMethod::Patch => pb::WatchMethod::Patch,
            WatchMethod::Delete => pb::WatchMethod::Delete,
        } as i32,
        status: if settings.enabled {
            pb::WatchStatus::Enabled
        } else {
            pb::WatchStatus::Disabled
        } as i32,
        oauth2_auth: settings.oauth2.as_ref().map(|oauth2| pb::OAuth2Auth {
            grant_type: oauth2.grant_type.clone(),
            client_id: oauth2.client_id.clone(),
            client_secret: String::new(),
            refresh_token: String::new(),
            auth_url: oauth2.auth_url.clone(),
            access_token_url: oauth2.access_token_url.clone(),
            scope: oauth2.scope.clone(),
            client_secret_set: oauth2.client_secret.is_some(),
            refresh_token_set: oauth2.refresh_token.is_some(),
        }),
        signature: Some(pb::WatchSignature {
            enabled: settings.signature_enabled,
            crypto_key_ids: settings
                .crypto_key_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
        }),
        add_previous_data: settings.add_previous_data,
        delivery_stats: Some(pb::DeliveryStats {
            last_success_time: watch.last_success_time.map(timestamp),
            last_failure_time: watch.last_failure_time.map(timestamp),
            consecutive_failures: watch.consecutive_failures,
        }),
        disabled_reason: watch.disabled_reason.clone(),
        create_time: Some(timestamp(watch.create_time)),
        update_time: Some(timestamp(watch.update_time)),
    }
}

pub fn crypto_key_to_proto(key: &CryptoKey) -> pb::CryptoKey {
    pb::CryptoKey {
        id: key.id.to_string(),
        name: key.name.clone(),
        create_time: Some(timestamp(key.create_time)),
    }
}

pub fn delivery_to_proto(delivery: &Delivery) -> pb::Delivery {
    pb::Delivery {
        id: delivery.id.to_string(),
        watch_id: delivery.watch_id.to_string(),
        event_id: delivery.event_id.clone(),
        event_type: delivery.event_type.clone(),
        call_id: delivery.call_id.to_string(),
        attempt: delivery.attempt,
        attempt_time: Some(timestamp(delivery.attempt_time)),
        request_headers: delivery
            .request_headers
            .iter()
            .map(|(name, value)| pb::HttpRequestHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        request_body: delivery.request_body.clone(),
        response_status: delivery.response_status,
        response_body: delivery.response_body.clone(),
        error: delivery.error.clone(),
        duration: Some(prost_types::Duration {
            seconds: i64::try_from(delivery.duration.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delivery.duration.subsec_nanos()).unwrap_or(0),
        }),
        outcome: match delivery.outcome {
            DeliveryOutcome::Succeeded => pb::DeliveryOutcome::Succeeded,
            DeliveryOutcome::Retrying => pb::DeliveryOutcome::Retrying,
            DeliveryOutcome::Failed => pb::DeliveryOutcome::Failed,
        } as i32,
        manual: delivery.manual,
    }
}

/// Parses an id field; a malformed id cannot name anything.
pub fn id(field: &str, id: &str, what: &str) -> Result<uuid::Uuid, Error> {
    if id.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    uuid::Uuid::parse_str(id).map_err(|_| Error::invalid(field, format!("is not a {what} id")))
}
