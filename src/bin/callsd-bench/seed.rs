//! `seed`: loads many realistic calls into a new tenant with binary COPY, writing exactly the
//! rows CreateCall would write (number digits, local start, zone, instants, change position)
//! and, optionally, their change-log rows.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono_tz::Tz;
use futures::pin_mut;
use tokio_postgres::{binary_copy::BinaryCopyInWriter, types::Type};

use callsd::{
    auth,
    domain::{CallFields, CallStart, PhoneNumber, TenantId},
    store::{self, PoolSettings, Store},
};

use crate::data::{seeded_id, CallGenerator, GeneratedCall};

/// The columns COPY writes; the rest (version, create/update time) take their defaults.
const COPY_SQL: &str = "COPY calls (id, tenant_id, button_id, client_id, caller_number,
    called_number, tracking_number, number_digits, start_local, start_zone, start_time, end_time,
    duration_micros, status, external_id, call_type, record_mime_type, record_url, change_tx,
    change_seq) FROM STDIN (FORMAT binary)";
const COPY_TYPES: [Type; 20] = [
    Type::UUID,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMP,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::INT2,
    Type::TEXT,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
];
/// The change-log rows CreateCall writes, for one COPY batch (`$1` tenant, `$2` its tx).
const LOG_SQL: &str =
    "INSERT INTO change_log (change_tx, change_seq, tenant_id, call_id, kind, call)
    SELECT change_tx, change_seq, tenant_id, id, 1, to_jsonb(c) FROM calls c
    WHERE tenant_id = $1 AND change_tx = $2";

pub struct SeedOptions {
    pub database_url: String,
    pub tenant: String,
    pub calls: u64,
    pub batch: u64,
    pub change_log: bool,
    /// Drop the secondary indexes of `calls` during the load and build them afterwards.
    pub rebuild_indexes: bool,
}

/// Creates the tenant and its key, loads the calls; returns (tenant id, key, elapsed).
pub async fn seed(options: &SeedOptions) -> anyhow::Result<(TenantId, String, Duration)> {
    let settings = PoolSettings {
        max_size: 2,
        connect_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(30),
        statement_timeout: Duration::from_secs(3600),
    };
    let config = store::connection_config(&options.database_url, &settings)?;
    let store = Store::new(config.clone(), &settings)?;
    {
        let mut client = store.client().await?;
        store::migrate(&mut client).await?;
    }
    let tenant = store
        .create_tenant(&options.tenant, Tz::Europe__Paris)
        .await
        .with_context(|| format!("cannot create tenant {}", options.tenant))?;
    let key = auth::create_api_key(&store, tenant.id).await?.key;

    let started = Instant::now();
    let (mut client, connection) = config.connect(tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    // Loading into a table without its secondary indexes and building them once afterwards is
    // several times faster than updating them row by row (the digit-gram GIN index above all).
    let secondary_indexes: Vec<(String, String)> = if options.rebuild_indexes {
        client
            .query(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
                 WHERE indrelid = 'calls'::regclass AND NOT indisunique",
                &[],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    } else {
        Vec::new()
    };
    for (name, _) in &secondary_indexes {
        client.batch_execute(&format!("DROP INDEX {name}")).await?;
    }
    let mut generator = CallGenerator::new(7);
    let mut next = 1_u64;
    while next <= options.calls {
        let count = options.batch.min(options.calls - next + 1);
        let transaction = client.transaction().await?;
        let tx: i64 = transaction
            .query_one("SELECT pg_current_xact_id()::text::bigint", &[])
            .await?
            .get(0);
        // Reserve `count` change sequence numbers (nothing else writes during a seed).
        let first_seq: i64 = transaction
            .query_one(
                "SELECT setval('change_seq', nextval('change_seq') + $1 - 1) - $1 + 1",
                &[&i64::try_from(count)?],
            )
            .await?
            .get(0);
        let sink = transaction.copy_in(COPY_SQL).await?;
        let writer = BinaryCopyInWriter::new(sink, &COPY_TYPES);
        pin_mut!(writer);
        for offset in 0..count {
            let n = next + offset;
            let call = generator.next_call(n);
            let row = Row::new(&call)?;
            let id = seeded_id(n);
            let seq = first_seq + i64::try_from(offset)?;
            writer
                .as_mut()
                .write(&[
                    &id,
                    &tenant.id,
                    &call.button_id,
                    &call.client_id,
                    &call.caller_number,
                    &call.called_number,
                    &call.tracking_number,
                    &row.number_digits,
                    &call.start_local,
                    &call.zone.name(),
                    &row.start_time,
                    &row.end_time,
                    &row.duration_micros,
                    &(call.status as i16),
                    &call.external_id,
                    &(call.call_type as i16),
                    &row.record_mime_type,
                    &row.record_url,
                    &tx,
                    &seq,
                ])
                .await?;
        }
        writer.finish().await?;
        if options.change_log {
            transaction.execute(LOG_SQL, &[&tenant.id, &tx]).await?;
        }
        transaction.commit().await?;
        next += count;
        eprintln!(
            "seeded {} calls in {:.1}s",
            next - 1,
            started.elapsed().as_secs_f64()
        );
    }
    client
        .batch_execute("SET maintenance_work_mem = '256MB'")
        .await?;
    for (name, definition) in &secondary_indexes {
        let building = Instant::now();
        client.batch_execute(definition).await?;
        eprintln!("built {name} in {:.1}s", building.elapsed().as_secs_f64());
    }
    client
        .batch_execute("ANALYZE calls; ANALYZE change_log")
        .await?;
    let elapsed = started.elapsed();
    drop(client);
    let _ = connection.await;
    store.close();
    Ok((tenant.id, key, elapsed))
}

/// The values CreateCall derives from the fields, computed with the service's own rules.
struct Row {
    number_digits: String,
    start_time: chrono::DateTime<chrono::Utc>,
    end_time: chrono::DateTime<chrono::Utc>,
    duration_micros: i64,
    record_mime_type: String,
    record_url: String,
}

impl Row {
    fn new(call: &GeneratedCall) -> anyhow::Result<Row> {
        let start = CallStart {
            local: call.start_local,
            zone: call.zone,
        };
        let start_time = start.instant().map_err(anyhow::Error::msg)?;
        let fields = CallFields {
            button_id: call.button_id.clone(),
            client_id: call.client_id.clone(),
            caller_number: PhoneNumber::parse("caller_number", &call.caller_number)?,
            called_number: PhoneNumber::parse("called_number", &call.called_number)?,
            tracking_number: (!call.tracking_number.is_empty())
                .then(|| PhoneNumber::parse("tracking_number", &call.tracking_number))
                .transpose()?,
            start,
            duration: Duration::from_secs(u64::from(call.duration_secs)),
            status: None,
            external_id: call.external_id.clone(),
            call_type: None,
            record: None,
        };
        let duration = chrono::Duration::seconds(i64::from(call.duration_secs));
        let (record_mime_type, record_url) = call.record.clone().unwrap_or_default();
        Ok(Row {
            number_digits: fields.number_digits(),
            start_time,
            end_time: start_time + duration,
            duration_micros: duration.num_microseconds().unwrap_or(i64::MAX),
            record_mime_type,
            record_url,
        })
    }
}
