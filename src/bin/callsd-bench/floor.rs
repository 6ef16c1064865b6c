//! The stack's floor: a gRPC server built from the service's own parts (tonic, the deadpool
//! pool of [`callsd::store::Store`], tokio-postgres, the service's codec) that answers GetCall
//! and ListCalls with the service's own statements and nothing else: no authentication, no
//! validation, no tokens, no decoding. Each row's columns are copied as raw bytes into a call
//! (field 1) as one field the Call message does not have, so the answer is as large as the
//! service's and any client decodes it as the generated response: calls with nothing known.
//!
//! What the service reaches against what this reaches, on the same machine and client, is what
//! its own code costs; what this reaches against pgbench is the most any service on this stack
//! could reach there.

use std::{
    convert::Infallible,
    net::SocketAddr,
    task::{Context, Poll},
};

use prost::{
    bytes::{Buf, BufMut},
    encoding::{self, DecodeContext, WireType},
    DecodeError,
};
use tokio_postgres::types::{FromSql, Type};
use tonic::{
    body::Body,
    codegen::{http, BoxFuture, Service, StdError},
    server::{Grpc, NamedService, UnaryService},
    transport::server::TcpIncoming,
    Request, Response, Status,
};

use callsd::{
    domain::{CallId, TenantId},
    grpc::codec::SmallBufferCodec,
    pb::calls::v1 as pb,
    store::{self, PoolSettings, Store},
};

/// GetCall's statement (Store::get_call; bench/pgbench/get.sql).
const GET_SQL: &str = "SELECT id, button_id, client_id, caller_number, called_number,
    tracking_number, start_local, start_zone, start_time, duration_micros, status, external_id,
    call_type, record_mime_type, record_url, version, create_time, update_time, delete_time,
    change_tx, change_seq
  FROM calls
 WHERE tenant_id = $1 AND id = $2 AND delete_time IS NULL";

/// ListCalls' first page (Store::list_calls; bench/pgbench/list.sql): the calls, then the
/// feed's barrier and seen positions in a row of their own.
const LIST_SQL: &str = "WITH barrier AS (SELECT COALESCE(NULL::bigint,
     pg_snapshot_xmin(pg_current_snapshot())::text::bigint) AS tx), seen AS (
    SELECT change_tx, change_seq FROM change_log
    WHERE tenant_id = $1 AND change_tx >= (SELECT tx FROM barrier)
    ORDER BY change_tx, change_seq LIMIT 64)
(SELECT NULL::bigint, NULL::bigint[], NULL::bigint[], id, button_id, client_id, caller_number,
    called_number, tracking_number, start_local, start_zone, start_time, duration_micros, status,
    external_id, call_type, record_mime_type, record_url, version, create_time, update_time,
    delete_time, change_tx, change_seq
  FROM calls c
 WHERE c.tenant_id = $1 AND c.delete_time IS NULL
 ORDER BY start_time DESC, id DESC LIMIT $2)
UNION ALL
SELECT (SELECT tx FROM barrier), (SELECT array_agg(change_tx) FROM seen),
    (SELECT array_agg(change_seq) FROM seen), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
 ORDER BY start_time DESC, id DESC";

const PAGE_SIZE: i64 = 50;
/// A list row starts with the feed's barrier and seen positions, then a call's 21 columns.
const LIST_FEED_COLUMNS: usize = 3;
const CALL_COLUMNS: usize = 21;
/// The service's pool: 16 connections, its timeouts (src/config.rs defaults).
const POOL: PoolSettings = PoolSettings {
    max_size: 16,
    connect_timeout: std::time::Duration::from_secs(5),
    acquire_timeout: std::time::Duration::from_secs(5),
    statement_timeout: std::time::Duration::from_secs(10),
};
/// A field number `Call` does not use: clients skip it whole.
const RAW_COLUMNS_TAG: u32 = 1000;
const SERVICE_NAME: &str = "calls.v1.CallService";
const GET_PATH: &str = "/calls.v1.CallService/GetCall";
const LIST_PATH: &str = "/calls.v1.CallService/ListCalls";

/// Serves the floor on `listen` until the process is stopped; prints `listening=ADDRESS`.
pub async fn serve(
    database_url: &str,
    tenant_id: TenantId,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let store = Store::new(store::connection_config(database_url, &POOL)?, &POOL)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening={}", listener.local_addr()?);
    let floor = Floor { store, tenant_id };
    tonic::transport::Server::builder()
        .add_service(floor)
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await?;
    Ok(())
}

#[derive(Clone)]
struct Floor {
    store: Store,
    tenant_id: TenantId,
}

impl NamedService for Floor {
    const NAME: &'static str = SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for Floor
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let floor = self.clone();
        match request.uri().path() {
            GET_PATH => Box::pin(async move {
                let codec = SmallBufferCodec::<RawRows, pb::GetCallRequest>::default();
                Ok(Grpc::new(codec).unary(GetFloor(floor), request).await)
            }),
            LIST_PATH => Box::pin(async move {
                let codec = SmallBufferCodec::<RawRows, pb::ListCallsRequest>::default();
                Ok(Grpc::new(codec).unary(ListFloor(floor), request).await)
            }),
            _ => Box::pin(async {
                Ok(Status::unimplemented("the floor has GetCall and ListCalls").into_http())
            }),
        }
    }
}

struct GetFloor(Floor);

impl UnaryService<pb::GetCallRequest> for GetFloor {
    type Response = RawRows;
    type Future = BoxFuture<Response<RawRows>, Status>;

    fn call(&mut self, request: Request<pb::GetCallRequest>) -> Self::Future {
        let floor = self.0.clone();
        Box::pin(async move {
            let id = request
                .get_ref()
                .id
                .parse::<CallId>()
                .map_err(|_| Status::invalid_argument("id is not a UUID"))?;
            let rows = floor.query(GET_SQL, &[&floor.tenant_id, &id]).await?;
            match rows.first() {
                Some(_) => Ok(Response::new(RawRows::from_rows(
                    &rows[..1],
                    0..CALL_COLUMNS,
                ))),
                None => Err(Status::not_found("no such call")),
            }
        })
    }
}

struct ListFloor(Floor);

impl UnaryService<pb::ListCallsRequest> for ListFloor {
    type Response = RawRows;
    type Future = BoxFuture<Response<RawRows>, Status>;

    fn call(&mut self, _request: Request<pb::ListCallsRequest>) -> Self::Future {
        let floor = self.0.clone();
        Box::pin(async move {
            // One more than a page, as the service asks, to know whether another follows.
            let rows = floor
                .query(LIST_SQL, &[&floor.tenant_id, &(PAGE_SIZE + 1)])
                .await?;
            // The feed's row (its barrier set) is no call.
            let calls: Vec<_> = rows
                .into_iter()
                .filter(|row| matches!(row.try_get::<_, Option<i64>>(0), Ok(None)))
                .collect();
            let page = &calls[..calls.len().min(PAGE_SIZE as usize)];
            let call_columns = LIST_FEED_COLUMNS..LIST_FEED_COLUMNS + CALL_COLUMNS;
            Ok(Response::new(RawRows::from_rows(page, call_columns)))
        })
    }
}

impl Floor {
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, Status> {
        let client = self
            .store
            .client()
            .await
            .map_err(|error| Status::unavailable(error.to_string()))?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|error| Status::internal(error.to_string()))?;
        client
            .query(&statement, params)
            .await
            .map_err(|error| Status::internal(error.to_string()))
    }
}

/// A column's bytes as PostgreSQL sent them, whatever its type.
struct RawColumn<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawColumn<'a> {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawColumn(Some(raw)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawColumn(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// An answer of rows: each a call (field 1 of GetCallResponse and ListCallsResponse) holding
/// its columns' raw bytes in one unknown field.
#[derive(Debug, Default, Clone, PartialEq)]
struct RawRows(Vec<u8>);

impl RawRows {
    /// The given columns of each row.
    fn from_rows(rows: &[tokio_postgres::Row], wanted: std::ops::Range<usize>) -> RawRows {
        let mut answer = Vec::with_capacity(rows.len() * 256);
        let (mut columns, mut call) = (Vec::with_capacity(256), Vec::with_capacity(256));
        for row in rows {
            columns.clear();
            for column in wanted.clone() {
                if let Ok(RawColumn(Some(raw))) = row.try_get::<_, RawColumn>(column) {
                    columns.extend_from_slice(raw);
                }
            }
            call.clear();
            encoding::bytes::encode(RAW_COLUMNS_TAG, &columns, &mut call);
            encoding::bytes::encode(1, &call, &mut answer);
        }
        RawRows(answer)
    }
}

impl prost::Message for RawRows {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        // Only ever sent.
        encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}
