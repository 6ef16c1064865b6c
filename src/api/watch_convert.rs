//! Watch messages to domain drafts and back. The service validates drafts and seals their
//! secrets; on the way out a watch shows only whether a secret is stored, never the secret.

use super::convert::{self, timestamp};
use crate::{
    domain::{
        BasicAuthDraft, CryptoKey, CryptoKeyId, Delivery, DeliveryId, DeliveryOutcome, OAuth2Draft,
        WatchDraft, WatchId, WatchMethod, WatchView,
    },
    error::Violations,
    pb::calls::v1 as pb,
    Error,
};

/// What a client wrote in a `Watch`, for the service's rules; enum numbers this version does
/// not know are reported as unreadable fields.
pub fn watch_draft(watch: &pb::Watch) -> WatchDraft {
    let mut unreadable = Violations::default();
    let basic = watch.basic_auth.clone().unwrap_or_default();
    let signature = watch.signature.clone().unwrap_or_default();
    WatchDraft {
        name: watch.name.clone(),
        address: watch.address.clone(),
        basic_auth: BasicAuthDraft {
            username: basic.username,
            password: basic.password,
        },
        headers: headers(&watch.http_request_headers),
        schema: watch.schema.clone(),
        method: method(watch.method, &mut unreadable),
        enabled: enabled(watch.status, &mut unreadable),
        oauth2: oauth2_draft(watch.oauth2_auth.as_ref()),
        signature_enabled: signature.enabled,
        crypto_key_ids: signature.crypto_key_ids,
        add_previous_data: watch.add_previous_data,
        unreadable,
    }
}

pub fn headers(headers: &[pb::HttpRequestHeader]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|header| (header.name.clone(), header.value.clone()))
        .collect()
}

/// The method a `WatchMethod` number names (unspecified is POST).
pub fn method(number: i32, unreadable: &mut Violations) -> WatchMethod {
    match pb::WatchMethod::try_from(number) {
        Ok(pb::WatchMethod::Unspecified | pb::WatchMethod::Post) => WatchMethod::Post,
        Ok(pb::WatchMethod::Put) => WatchMethod::Put,
        Ok(pb::WatchMethod::Patch) => WatchMethod::Patch,
        Ok(pb::WatchMethod::Delete) => WatchMethod::Delete,
        Err(_) => {
            unreadable.add("watch.method", format!("{number} is not a WatchMethod"));
            WatchMethod::Post
        }
    }
}

/// Whether a `WatchStatus` number means enabled (unspecified does).
pub fn enabled(number: i32, unreadable: &mut Violations) -> bool {
    match pb::WatchStatus::try_from(number) {
        Ok(pb::WatchStatus::Disabled) => false,
        Ok(_) => true,
        Err(_) => {
            unreadable.add("watch.status", format!("{number} is not a WatchStatus"));
            true
        }
    }
}

/// OAuth2 credentials; an absent or all-default message means none.
pub fn oauth2_draft(oauth2: Option<&pb::OAuth2Auth>) -> Option<OAuth2Draft> {
    oauth2
        .filter(|oauth2| **oauth2 != pb::OAuth2Auth::default())
        .map(|oauth2| OAuth2Draft {
            grant_type: oauth2.grant_type.clone(),
            client_id: oauth2.client_id.clone(),
            client_secret: oauth2.client_secret.clone(),
            refresh_token: oauth2.refresh_token.clone(),
            auth_url: oauth2.auth_url.clone(),
            access_token_url: oauth2.access_token_url.clone(),
            scope: oauth2.scope.clone(),
        })
}

/// A watch as clients see it: no secret, only whether one is stored (the service's view has
/// no secret to show).
pub fn watch_to_proto(watch: &WatchView) -> pb::Watch {
    pb::Watch {
        id: watch.id.to_string(),
        address: watch.address.clone(),
        name: watch.name.clone(),
        basic_auth: watch.basic_auth.as_ref().map(|basic| pb::BasicAuth {
            username: basic.username.clone(),
            password: String::new(),
            password_set: basic.password_set,
        }),
        http_request_headers: watch
            .headers
            .iter()
            .map(|(name, value)| pb::HttpRequestHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        schema: watch.schema.clone(),
        method: match watch.method {
            WatchMethod::Post => pb::WatchMethod::Post,
            WatchMethod::Put => pb::WatchMethod::Put,
            WatchMethod::Patch => pb::WatchMethod::Patch,
            WatchMethod::Delete => pb::WatchMethod::Delete,
        } as i32,
        status: if watch.enabled {
            pb::WatchStatus::Enabled
        } else {
            pb::WatchStatus::Disabled
        } as i32,
        oauth2_auth: watch.oauth2.as_ref().map(|oauth2| pb::OAuth2Auth {
            grant_type: oauth2.grant_type.clone(),
            client_id: oauth2.client_id.clone(),
            client_secret: String::new(),
            refresh_token: String::new(),
            auth_url: oauth2.auth_url.clone(),
            access_token_url: oauth2.access_token_url.clone(),
            scope: oauth2.scope.clone(),
            client_secret_set: oauth2.client_secret_set,
            refresh_token_set: oauth2.refresh_token_set,
        }),
        signature: Some(pb::WatchSignature {
            enabled: watch.signature_enabled,
            crypto_key_ids: watch
                .crypto_key_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
        }),
        add_previous_data: watch.add_previous_data,
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

/// Reads a watch id field; each kind of id has its reader, so a request's watch id cannot
/// reach the service as a key or delivery id.
pub fn watch_id(field: &str, id: &str) -> Result<WatchId, Error> {
    convert::parse_id(field, id, "watch")
}

pub fn crypto_key_id(field: &str, id: &str) -> Result<CryptoKeyId, Error> {
    convert::parse_id(field, id, "crypto key")
}

pub fn delivery_id(field: &str, id: &str) -> Result<DeliveryId, Error> {
    convert::parse_id(field, id, "delivery")
}
