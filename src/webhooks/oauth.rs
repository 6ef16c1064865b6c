//! OAuth2 bearer tokens for watches: fetched from the watch's `access_token_url` with its grant
//! (`refresh_token` or `client_credentials`), cached until shortly before they expire, and
//! dropped when the receiver answers 401 so the next request fetches a fresh one.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::{secrets::SecretBox, ssrf::AddressGuard};
use crate::domain::OAuth2Settings;

/// Tokens are renewed this long before the expiry the server announced.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Lifetime assumed when the token endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Bounds the cache; past it, the whole cache is dropped (tokens are cheap to fetch again).
const MAX_CACHED_TOKENS: usize = 10_000;

struct CachedToken {
    token: String,
    expires: Instant,
    /// Changes when the watch's OAuth2 settings change, so edits take effect at once.
    fingerprint: u64,
}

/// Access tokens by watch id; cheap to clone.
#[derive(Clone, Default)]
pub struct TokenCache {
    tokens: Arc<Mutex<HashMap<Uuid, CachedToken>>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl TokenCache {
    /// A valid access token for `watch_id`, from the cache or from the token endpoint.
    pub async fn token(
        &self,
        client: &reqwest::Client,
        guard: &AddressGuard,
        secrets: &SecretBox,
        tenant_id: Uuid,
        watch_id: Uuid,
        settings: &OAuth2Settings,
    ) -> Result<String, String> {
        let fingerprint = fingerprint(settings);
        if let Some(cached) = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&watch_id)
        {
            if cached.fingerprint == fingerprint && cached.expires > Instant::now() {
                return Ok(cached.token.clone());
            }
        }
        let url = guard
            .check_url_syntax(&settings.access_token_url)
            .map_err(|error| format!("oauth2 access_token_url {error}"))?;
        let open = |sealed: &Option<Vec<u8>>| -> Result<String, String> {
            sealed
                .as_ref()
                .map(|sealed| secrets.open_text(tenant_id.as_bytes(), sealed))
                .transpose()
                .map(Option::unwrap_or_default)
                .map_err(|error| error.to_string())
        };
        let client_secret = open(&settings.client_secret)?;
        let refresh_token = if settings.grant_type == "refresh_token" {
            Some(open(&settings.refresh_token)?)
        } else {
            None
        };
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", &settings.grant_type);
            form.append_pair("client_id", &settings.client_id);
            if !client_secret.is_empty() {
                form.append_pair("client_secret", &client_secret);
            }
            if let Some(refresh_token) = &refresh_token {
                form.append_pair("refresh_token", refresh_token);
            }
            if !settings.scope.is_empty() {
                form.append_pair("scope", &settings.scope);
            }
            form.finish()
        };
        let response = client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form)
            .send()
            .await
            .map_err(|error| format!("oauth2 token request failed: {}", describe(&error)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("oauth2 token endpoint answered {status}"));
        }
        let answer: TokenResponse = response
            .json()
            .await
            .map_err(|error| format!("oauth2 token response is not valid: {error}"))?;
        let lifetime = answer
            .expires_in
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tokens.len() >= MAX_CACHED_TOKENS {
            tokens.clear();
        }
        tokens.insert(
            watch_id,
            CachedToken {
                token: answer.access_token.clone(),
                expires: Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN),
                fingerprint,
            },
        );
        Ok(answer.access_token)
    }

    /// Drops the cached token of `watch_id` (the receiver refused it).
    pub fn forget(&self, watch_id: Uuid) {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&watch_id);
    }
}

fn fingerprint(settings: &OAuth2Settings) -> u64 {
    let mut hasher = DefaultHasher::new();
    settings.hash(&mut hasher);
    hasher.finish()
}

/// An HTTP client error with its causes, for the delivery log (never holds secrets: reqwest
/// errors name the URL, and watch URLs carry no credentials).
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
