//! Sends one webhook request: Standard Webhooks headers and signatures, custom headers, Basic or
//! OAuth2 credentials; never follows redirects; reads a bounded part of the answer.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use reqwest::{header::HeaderValue, Method, StatusCode};

use super::{
    oauth::{describe, TokenCache},
    secrets::SecretBox,
    signing,
    ssrf::{AddressGuard, GuardedResolver},
};
use crate::{
    domain::{Watch, WatchMethod},
    store::Store,
    Error,
};

/// The most of an answer's body read and logged: enough for an error message; the rest is
/// never read, so a receiver cannot make a worker buffer a large answer.
const MAX_RESPONSE_BODY: usize = 4096;
/// The longest `Retry-After` honoured, so a receiver cannot park a watch for ever.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Timeouts of webhook requests.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

/// What one request did.
#[derive(Debug, Clone)]
pub struct SentRequest {
    /// The request headers, credentials replaced by `<redacted>`.
    pub headers: Vec<(String, String)>,
    /// The answer's status; 0 when there was none.
    pub status: u16,
    pub response_body: String,
    /// Why it failed, when it did (empty on 2xx).
    pub error: String,
    pub duration: Duration,
    /// The receiver's `Retry-After` (seconds or an HTTP date), at most a day.
    pub retry_after: Option<Duration>,
}

impl SentRequest {
    pub fn succeeded(&self) -> bool {
        self.error.is_empty()
    }
}

/// Sends webhook requests; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: AddressGuard,
    secrets: SecretBox,
    store: Store,
    tokens: TokenCache,
}

impl Sender {
    pub fn new(
        store: Store,
        secrets: SecretBox,
        guard: AddressGuard,
        timeouts: Timeouts,
    ) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .user_agent(concat!("callsd-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| Error::Internal(error.into()))?;
        Ok(Sender {
            client,
            guard,
            secrets,
            store,
            tokens: TokenCache::default(),
        })
    }

    /// Sends `body` (JSON text) for the event `event_id` to `watch`. A failure of any kind is
    /// in the result, never an `Err`: every attempt is logged.
    pub async fn send(&self, watch: &Watch, event_id: &str, body: &str) -> SentRequest {
        let started = Instant::now();
        let mut headers = Vec::new();
        let outcome = self.try_send(watch, event_id, body, &mut headers).await;
        let duration = started.elapsed();
        match outcome {
            Ok((status, response_body, retry_after)) => {
                let error = if status.is_success() {
                    String::new()
                } else if status.is_redirection() {
                    format!("HTTP {status}: redirects are not followed")
                } else {
                    format!("HTTP {status}")
                };
                SentRequest {
                    headers,
                    status: status.as_u16(),
                    response_body,
                    error,
                    duration,
                    retry_after,
                }
            }
            Err(error) => SentRequest {
                headers,
                status: 0,
                response_body: String::new(),
                error,
                duration,
                retry_after: None,
            },
        }
    }

    async fn try_send(
        &self,
        watch: &Watch,
        event_id: &str,
        body: &str,
        logged_headers: &mut Vec<(String, String)>,
    ) -> Result<(StatusCode, String, Option<Duration>), String> {
        let settings = &watch.settings;
        let url = self.guard.check_url_syntax(&settings.address)?;
        let method = match settings.method {
            WatchMethod::Post => Method::POST,
            WatchMethod::Put => Method::PUT,
            WatchMethod::Patch => Method::PATCH,
            WatchMethod::Delete => Method::DELETE,
        };
        let with_body = settings.method != WatchMethod::Delete;
        let timestamp = chrono::Utc::now().timestamp();
        let mut headers = vec![
            ("webhook-id".to_owned(), event_id.to_owned()),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ];
        if with_body {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        if settings.signature_enabled {
            let keys = self.signing_keys(watch).await?;
            if !keys.is_empty() {
                let signed_body = if with_body { body.as_bytes() } else { b"" };
                let signature = signing::signature_header(&keys, event_id, timestamp, signed_body)
                    .map_err(|error| error.to_string())?;
                headers.push(("webhook-signature".to_owned(), signature));
            }
        }
        headers.extend(settings.headers.iter().cloned());
        logged_headers.clone_from(&headers);
        let basic = if settings.basic_username.is_empty() {
            None
        } else {
            let password = settings
                .basic_password
                .as_ref()
                .map(|sealed| self.secrets.open_text(watch.tenant_id.as_bytes(), sealed))
                .transpose()
                .map_err(|error| error.to_string())?
                .unwrap_or_default();
            let credentials = STANDARD.encode(format!("{}:{password}", settings.basic_username));
            logged_headers.push(("authorization".to_owned(), "Basic <redacted>".to_owned()));
            Some(format!("Basic {credentials}"))
        };
        if settings.oauth2.is_some() {
            logged_headers.push(("authorization".to_owned(), "Bearer <redacted>".to_owned()));
        }
        let mut refreshed = false;
        loop {
            let authorization = match &settings.oauth2 {
                Some(oauth2) => Some(format!(
                    "Bearer {}",
                    self.tokens
                        .token(
                            &self.client,
                            &self.guard,
                            &self.secrets,
                            watch.tenant_id,
                            watch.id,
                            oauth2,
                        )
                        .await?
                )),
                None => basic.clone(),
            };
            let mut request = self.client.request(method.clone(), url.clone());
            for (name, value) in &headers {
                request = request.header(name.as_str(), value.as_str());
            }
            if let Some(authorization) = authorization {
                let mut value = HeaderValue::from_str(&authorization)
                    .map_err(|_| "the credentials are not a valid header value".to_owned())?;
                value.set_sensitive(true);
                request = request.header("authorization", value);
            }
            if with_body {
                request = request.body(body.to_owned());
            }
            let mut response = request
                .send()
                .await
                .map_err(|error| format!("request failed: {}", describe(&error)))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && settings.oauth2.is_some() && !refreshed {
                // The token may have been revoked early: fetch a fresh one, once.
                self.tokens.forget(watch.id);
                refreshed = true;
                continue;
            }
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(parse_retry_after);
            let text = read_bounded(&mut response, status).await?;
            return Ok((status, text, retry_after));
        }
    }

    /// The opened secrets of the watch's signing keys (keys deleted since are skipped).
    async fn signing_keys(&self, watch: &Watch) -> Result<Vec<Vec<u8>>, String> {
        let sealed = self
            .store
            .crypto_key_secrets(watch.tenant_id, &watch.settings.crypto_key_ids)
            .await
            .map_err(|error| format!("cannot read the signing keys: {error}"))?;
        sealed
            .iter()
            .map(|(_, sealed)| self.secrets.open(watch.tenant_id.as_bytes(), sealed))
            .collect::<Result<_, _>>()
            .map_err(|error| error.to_string())
    }
}

/// At most [`MAX_RESPONSE_BODY`] bytes of the answer's body, cut on a character boundary and
/// marked `…[truncated N bytes]` (N from Content-Length, or `…[truncated]` without one) when
/// there was more. A failure to read a 2xx answer's body fails the attempt.
async fn read_bounded(
    response: &mut reqwest::Response,
    status: StatusCode,
) -> Result<String, String> {
    let mut body = Vec::new();
    while body.len() <= MAX_RESPONSE_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) if status.is_success() => {
                return Err(format!("reading the answer failed: {}", describe(&error)))
            }
            Err(_) => break,
        }
    }
    let more = body.len() > MAX_RESPONSE_BODY;
    body.truncate(MAX_RESPONSE_BODY);
    if let Err(error) = std::str::from_utf8(&body) {
        // A character cut by the limit is dropped; invalid bytes elsewhere become U+FFFD.
        if error.error_len().is_none() {
            body.truncate(error.valid_up_to());
        }
    }
    let mut text = String::from_utf8_lossy(&body).into_owned();
    if more {
        // The header, not content_length(), which counts what is left to read.
        let total = response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        match total {
            Some(total) if total > body.len() => {
                text.push_str(&format!("…[truncated {} bytes]", total - body.len()));
            }
            _ => text.push_str("…[truncated]"),
        }
    }
    Ok(text)
}

/// `Retry-After`: delay-seconds, or an HTTP date (RFC 9110), capped at [`MAX_RETRY_AFTER`].
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (date.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date_and_is_capped() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::TimeDelta::seconds(90)).to_rfc2822();
        let delay = parse_retry_after(&later).unwrap();
        assert!(delay > Duration::from_secs(80) && delay <= Duration::from_secs(90));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
