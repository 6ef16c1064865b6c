//! The rules a watch's settings obey before they are stored: where it may send (the SSRF
//! guard), which headers it may set, valid templates and OAuth2 grants, signing keys that
//! exist; and the secret policy: secrets are sealed on the way in, and a stored secret is kept
//! only for the destination it was given for.

use reqwest::header::{HeaderName, HeaderValue};
use uuid::Uuid;

use crate::{
    domain::{OAuth2Draft, OAuth2Settings, WatchDraft, WatchSettings},
    error::Violations,
    store::Store,
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
const REFRESH_TOKEN_GRANT: &str = "refresh_token";
const CLIENT_CREDENTIALS_GRANT: &str = "client_credentials";

/// What the settings rules ask of the webhook machinery: whether a watch may send to an
/// address, and a secret sealed for a tenant. [`Webhooks`] in the service; the unit tests
/// bring a guard and a key of their own, so the rules are checked without a database.
pub(super) trait Safeguards {
    /// `Err` says, for the client to read, why a watch may not send to `address`.
    async fn check_address(&self, address: &str) -> Result<(), String>;
    fn seal_secret(&self, tenant_id: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, Error>;
}

impl Safeguards for Webhooks {
    async fn check_address(&self, address: &str) -> Result<(), String> {
        Webhooks::check_address(self, address).await
    }

    fn seal_secret(&self, tenant_id: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        Webhooks::seal_secret(self, tenant_id, plaintext)
    }
}

/// Validates `draft` and seals its secrets for `tenant_id`, naming every bad field (under
/// `watch.`). `existing` holds the stored settings whose secrets a draft may leave empty.
pub async fn validated_settings(
    safeguards: &impl Safeguards,
    store: &Store,
    tenant_id: Uuid,
    draft: WatchDraft,
    existing: Option<&WatchSettings>,
) -> Result<WatchSettings, Error> {
    // Each readable key id with its place in the request, so a violation names the right one.
    let key_ids: Vec<(usize, Uuid)> = draft
        .crypto_key_ids
        .iter()
        .enumerate()
        .filter_map(|(index, id)| Uuid::parse_str(id).ok().map(|id| (index, id)))
        .collect();
    let mut violations = Violations::default();
    let settings =
        checked_settings(&mut violations, safeguards, tenant_id, draft, existing).await?;
    // The signing keys must be the tenant's own; only the ids that could be read are asked for.
    if !settings.crypto_key_ids.is_empty() {
        let known = store
            .crypto_key_secrets(tenant_id, &settings.crypto_key_ids)
            .await?;
        for (index, id) in &key_ids {
            if !known.iter().any(|(known, _)| known == id) {
                violations.add(
                    format!("watch.signature.crypto_key_ids[{index}]"),
                    "no such crypto key",
                );
            }
        }
    }
    violations.finish(|| settings)
}

/// Every rule but the existence of the signing keys: the settings, meaningful only when no
/// violation was recorded in `violations`. `Err` only when sealing a secret failed.
async fn checked_settings(
    violations: &mut Violations,
    safeguards: &impl Safeguards,
    tenant_id: Uuid,
    draft: WatchDraft,
    existing: Option<&WatchSettings>,
) -> Result<WatchSettings, Error> {
    let WatchDraft {
        name,
        address,
        basic_auth,
        headers,
        schema,
        method,
        enabled,
        oauth2,
        signature_enabled,
        crypto_key_ids,
        add_previous_data,
        unreadable,
    } = draft;
    if address.is_empty() {
        violations.add("watch.address", "is required");
    } else if let Err(error) = safeguards.check_address(&address).await {
        violations.add("watch.address", error);
    }
    let basic_password = if basic_auth.username.is_empty() {
        if !basic_auth.password.is_empty() {
            violations.add("watch.basic_auth.username", "is required with a password");
        }
        None
    } else if basic_auth.password.is_empty() {
        // A stored password goes only where it went before: a new address needs it again, so
        // an API key cannot redirect a write-only secret to a server of its choosing.
        let stored = existing.and_then(|existing| existing.basic_password.as_ref());
        let same_address = existing.is_some_and(|existing| existing.address == address);
        if stored.is_some() && !same_address {
            violations.add(
                "watch.basic_auth.password",
                "must be sent again when the address changes",
            );
        }
        stored.filter(|_| same_address).cloned()
    } else {
        Some(safeguards.seal_secret(tenant_id, basic_auth.password.as_bytes())?)
    };
    for (index, (header_name, header_value)) in headers.iter().enumerate() {
        let field = format!("watch.http_request_headers[{index}]");
        match HeaderName::from_bytes(header_name.as_bytes()) {
            Err(_) => violations.add(format!("{field}.name"), "is not an HTTP header name"),
            Ok(name) if RESERVED_HEADERS.contains(&name.as_str()) => violations.add(
                format!("{field}.name"),
                "is set by the service (use basic_auth or oauth2_auth for credentials)",
            ),
            Ok(_) => {}
        }
        if HeaderValue::from_str(header_value).is_err() {
            violations.add(format!("{field}.value"), "is not a valid HTTP header value");
        }
    }
    if !schema.is_empty() {
        if let Err(error) = Template::parse(&schema) {
            violations.add("watch.schema", error);
        }
    }
    violations.extend(unreadable);
    let oauth2 = match oauth2 {
        None => None,
        Some(oauth2) => {
            if !basic_auth.username.is_empty() {
                violations.add("watch.oauth2_auth", "cannot be used with basic_auth");
            }
            // Stored secrets go only to the token endpoint they were given for.
            let existing = existing
                .and_then(|existing| existing.oauth2.as_ref())
                .filter(|existing| existing.access_token_url == oauth2.access_token_url);
            violations.check(oauth2_settings(safeguards, tenant_id, oauth2, existing).await)
        }
    };
    let mut key_ids = Vec::new();
    for (index, id) in crypto_key_ids.iter().enumerate() {
        match Uuid::parse_str(id) {
            Ok(id) => key_ids.push(id),
            Err(_) => violations.add(
                format!("watch.signature.crypto_key_ids[{index}]"),
                "is not a crypto key id",
            ),
        }
    }
    if signature_enabled && crypto_key_ids.is_empty() {
        violations.add(
            "watch.signature.crypto_key_ids",
            "names no key; create one with CreateCryptoKey",
        );
    }
    Ok(WatchSettings {
        name,
        address,
        method,
        enabled,
        basic_username: basic_auth.username,
        basic_password,
        headers: headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect(),
        schema,
        oauth2: oauth2.flatten(),
        signature_enabled,
        crypto_key_ids: key_ids,
        add_previous_data,
    })
}

async fn oauth2_settings(
    safeguards: &impl Safeguards,
    tenant_id: Uuid,
    oauth2: OAuth2Draft,
    existing: Option<&OAuth2Settings>,
) -> Result<Option<OAuth2Settings>, Error> {
    let mut violations = Violations::default();
    let grant_type = match oauth2.grant_type.as_str() {
        "" => REFRESH_TOKEN_GRANT,
        grant => grant,
    };
    if ![REFRESH_TOKEN_GRANT, CLIENT_CREDENTIALS_GRANT].contains(&grant_type) {
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
    } else if let Err(error) = safeguards.check_address(&oauth2.access_token_url).await {
        violations.add("watch.oauth2_auth.access_token_url", error);
    }
    let seal = |plain: &str, stored: Option<&Vec<u8>>| {
        if plain.is_empty() {
            Ok(stored.cloned())
        } else {
            safeguards
                .seal_secret(tenant_id, plain.as_bytes())
                .map(Some)
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
    if grant_type == REFRESH_TOKEN_GRANT && refresh_token.is_none() {
        violations.add(
            "watch.oauth2_auth.refresh_token",
            "is required with grant_type \"refresh_token\"",
        );
    }
    if grant_type == CLIENT_CREDENTIALS_GRANT && client_secret.is_none() {
        violations.add(
            "watch.oauth2_auth.client_secret",
            "is required with grant_type \"client_credentials\"",
        );
    }
    let grant_type = grant_type.to_owned();
    violations.finish(|| {
        Some(OAuth2Settings {
            grant_type,
            client_id: oauth2.client_id,
            auth_url: oauth2.auth_url,
            access_token_url: oauth2.access_token_url,
            scope: oauth2.scope,
            client_secret,
            refresh_token,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::BasicAuthDraft,
        webhooks::{AddressGuard, SecretBox, SecretKey},
    };

    const PUBLIC_ADDRESS: &str = "https://93.184.215.14/hook";

    /// The guard with its default (public addresses only) and a fixed key.
    struct TestSafeguards {
        guard: AddressGuard,
        secrets: SecretBox,
    }

    impl TestSafeguards {
        fn new() -> Result<Self, String> {
            Ok(TestSafeguards {
                guard: AddressGuard::default(),
                secrets: SecretBox::new(&SecretKey::from_bytes(&[7; 32])?),
            })
        }
    }

    impl Safeguards for TestSafeguards {
        async fn check_address(&self, address: &str) -> Result<(), String> {
            self.guard.check_url(address).await.map(|_| ())
        }

        fn seal_secret(&self, tenant_id: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
            self.secrets.seal(tenant_id.as_bytes(), plaintext)
        }
    }

    fn draft(address: &str) -> WatchDraft {
        WatchDraft {
            address: address.into(),
            enabled: true,
            ..WatchDraft::default()
        }
    }

    fn with_password(address: &str, password: &str) -> WatchDraft {
        WatchDraft {
            basic_auth: BasicAuthDraft {
                username: "user".into(),
                password: password.into(),
            },
            ..draft(address)
        }
    }

    fn with_oauth2(access_token_url: &str, client_secret: &str) -> WatchDraft {
        WatchDraft {
            oauth2: Some(OAuth2Draft {
                grant_type: CLIENT_CREDENTIALS_GRANT.into(),
                client_id: "client".into(),
                client_secret: client_secret.into(),
                access_token_url: access_token_url.into(),
                ..OAuth2Draft::default()
            }),
            ..draft(PUBLIC_ADDRESS)
        }
    }

    /// The settings the rules make of `draft`, or the fields they name.
    async fn check(
        draft: WatchDraft,
        existing: Option<&WatchSettings>,
    ) -> Result<WatchSettings, Vec<String>> {
        let safeguards = TestSafeguards::new().map_err(|error| vec![error])?;
        let mut violations = Violations::default();
        let settings =
            checked_settings(&mut violations, &safeguards, Uuid::nil(), draft, existing).await;
        match settings.and_then(|settings| violations.finish(|| settings)) {
            Ok(settings) => Ok(settings),
            Err(Error::InvalidArgument(violations)) => Err(violations
                .into_iter()
                .map(|violation| violation.field)
                .collect()),
            Err(other) => Err(vec![other.to_string()]),
        }
    }

    #[tokio::test]
    async fn a_watch_may_not_send_to_a_private_address() {
        for address in [
            "http://10.0.0.1/hook",
            "http://127.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
        ] {
            let refused = check(draft(address), None).await;
            assert_eq!(refused.err(), Some(vec!["watch.address".to_owned()]));
        }
        assert!(check(draft(PUBLIC_ADDRESS), None).await.is_ok());
    }

    #[tokio::test]
    async fn an_oauth2_token_endpoint_may_not_be_a_private_address() {
        let refused = check(with_oauth2("http://192.168.1.1/token", "secret"), None).await;
        assert_eq!(
            refused.err(),
            Some(vec!["watch.oauth2_auth.access_token_url".to_owned()])
        );
    }

    #[tokio::test]
    async fn a_new_password_is_stored_sealed_for_its_tenant() {
        let settings = check(with_password(PUBLIC_ADDRESS, "basic-secret"), None).await;
        let sealed = settings
            .ok()
            .and_then(|settings| settings.basic_password)
            .unwrap_or_default();
        assert!(!String::from_utf8_lossy(&sealed).contains("basic-secret"));
        let secrets = TestSafeguards::new().map(|safeguards| safeguards.secrets);
        let opened = secrets
            .as_ref()
            .ok()
            .and_then(|secrets| secrets.open_text(Uuid::nil().as_bytes(), &sealed).ok());
        assert_eq!(opened.as_deref(), Some("basic-secret"));
        let other_tenant = Uuid::from_u128(1);
        let opened_elsewhere = secrets
            .ok()
            .map(|secrets| secrets.open(other_tenant.as_bytes(), &sealed).is_ok());
        assert_eq!(opened_elsewhere, Some(false));
    }

    #[tokio::test]
    async fn an_empty_password_keeps_the_stored_one_only_at_the_same_address() {
        let Ok(stored) = check(with_password(PUBLIC_ADDRESS, "basic-secret"), None).await else {
            panic!("a public address with a password is valid");
        };
        let kept = check(with_password(PUBLIC_ADDRESS, ""), Some(&stored)).await;
        assert_eq!(
            kept.ok().and_then(|settings| settings.basic_password),
            stored.basic_password
        );
        let moved = check(
            with_password("https://93.184.215.15/hook", ""),
            Some(&stored),
        )
        .await;
        assert_eq!(
            moved.err(),
            Some(vec!["watch.basic_auth.password".to_owned()])
        );
    }

    #[tokio::test]
    async fn stored_oauth2_secrets_go_only_to_their_token_endpoint() {
        let token_url = "https://93.184.215.14/token";
        let Ok(stored) = check(with_oauth2(token_url, "client-secret"), None).await else {
            panic!("a public token endpoint with a secret is valid");
        };
        let kept = check(with_oauth2(token_url, ""), Some(&stored)).await;
        assert_eq!(
            kept.ok().and_then(|settings| settings.oauth2),
            stored.oauth2
        );
        let moved = check(
            with_oauth2("https://93.184.215.15/token", ""),
            Some(&stored),
        )
        .await;
        assert_eq!(
            moved.err(),
            Some(vec!["watch.oauth2_auth.client_secret".to_owned()])
        );
    }

    #[tokio::test]
    async fn reserved_headers_and_a_missing_address_are_each_named() {
        let refused = check(
            WatchDraft {
                headers: vec![("Webhook-Signature".into(), "forged".into())],
                ..draft("")
            },
            None,
        )
        .await;
        assert_eq!(
            refused.err(),
            Some(vec![
                "watch.address".to_owned(),
                "watch.http_request_headers[0].name".to_owned(),
            ])
        );
    }
}
