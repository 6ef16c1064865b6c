//! Operator commands. Whatever a command creates that the operator must copy (an API key) is
//! printed alone on the last line of stdout; everything else goes to stderr (the logs), so
//! `KEY=$(callsd tenant create acme)` works.

use anyhow::{bail, Context};

use crate::{
    auth,
    config::{KeyCommand, Retention, TenantCommand},
    domain::{parse_time_zone, TenantId},
    store::{self, Store},
};

pub async fn migrate(store: &Store) -> anyhow::Result<()> {
    let mut client = store.client().await?;
    let applied = store::migrate(&mut client).await?;
    eprintln!("migrations applied: {applied}");
    Ok(())
}

pub async fn tenant(store: &Store, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { name, time_zone } => {
            let time_zone = parse_time_zone("--time-zone", &time_zone)?;
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                bail!("a tenant name must be non-empty text");
            }
            let tenant = store.create_tenant(&name, time_zone).await?;
            eprintln!(
                "created tenant {} ({}, time zone {})",
                tenant.name, tenant.id, time_zone
            );
            print_new_key(store, tenant.id).await
        }
        TenantCommand::Update { name, retention } => {
            let tenant = store
                .find_tenant(&name)
                .await?
                .with_context(|| format!("no tenant named {name:?}"))?;
            let Some(retention) = retention else {
                bail!("nothing to update: pass --retention");
            };
            let retention = match retention {
                Retention::Off => None,
                Retention::After(duration) => Some(duration),
            };
            store.set_call_retention(tenant.id, retention).await?;
            match retention {
                Some(duration) => eprintln!(
                    "tenant {}: calls that ended more than {} ago are deleted",
                    tenant.name,
                    humantime::format_duration(duration)
                ),
                None => eprintln!("tenant {}: calls are kept until deleted", tenant.name),
            }
            Ok(())
        }
    }
}

pub async fn key(store: &Store, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { tenant } => {
            let tenant = store
                .find_tenant(&tenant)
                .await?
                .with_context(|| format!("no tenant named {tenant:?}"))?;
            print_new_key(store, tenant.id).await
        }
        KeyCommand::Revoke { key_id } => {
            if !store.revoke_api_key(key_id).await? {
                bail!("no live API key has id {key_id}");
            }
            eprintln!("revoked API key {key_id}");
            Ok(())
        }
    }
}

async fn print_new_key(store: &Store, tenant_id: TenantId) -> anyhow::Result<()> {
    let created = auth::create_api_key(store, tenant_id).await?;
    eprintln!(
        "created API key {} (revoke with: callsd key revoke {}); it is shown only once:",
        created.key_id, created.key_id
    );
    println!("{}", created.key);
    Ok(())
}

/// The embedded default's first start creates a `default` tenant and prints its key once,
/// keeping a copy (mode 0600) in the data directory for later.
pub async fn bootstrap_default_tenant(
    store: &Store,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};

    const DEFAULT_TENANT: &str = "default";
    let key_file = data_dir.join("default-api-key");
    if store.find_tenant(DEFAULT_TENANT).await?.is_some() {
        tracing::info!(key_file = %key_file.display(), "the default tenant's API key is kept in the data directory");
        return Ok(());
    }
    let tenant = store
        .create_tenant(DEFAULT_TENANT, chrono_tz::Tz::UTC)
        .await?;
    let created = auth::create_api_key(store, tenant.id).await?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&key_file)
        .with_context(|| format!("cannot write {}", key_file.display()))?;
    writeln!(file, "{}", created.key)?;
    // The id is not the key: say which is which, and where the key itself is.
    eprintln!(
        "created tenant 'default' (time zone UTC) and an API key for it (key id {}, revoke \
         with: callsd key revoke {}); the key is kept in {} and shown once on stdout:",
        created.key_id,
        created.key_id,
        key_file.display()
    );
    println!("{}", created.key);
    Ok(())
}
