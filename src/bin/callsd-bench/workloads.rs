//! The workloads: what one request of each sends, and the setup some of them need.

use std::{str::FromStr, sync::Arc, time::Duration};

use rand::{rngs::SmallRng, Rng};
use tonic::{metadata::MetadataValue, transport::Channel, Request, Status};

use callsd::pb::calls::v1::{self as pb, call_service_client::CallServiceClient};
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

use crate::{
    data::{seeded_id, CallGenerator},
    page_reader::{list_page, PageSummary},
    rest::RestClient,
};

/// Every request gives up after this long, so no loop waits forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const PAGE_SIZE: i32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `grpc.health.v1.Health/Check`: no database work, so gRPC's own ceiling here.
    Ping,
    Create,
    Get,
    List,
    /// ListCalls with `page_size` 1, which an empty tenant answers too: a cheap, tenant-scoped
    /// request for any tenant (the noisy one of `fairness`).
    ListOne,
    ListDeep,
    Search,
    Update,
    Mixed,
    /// SummarizeCalls: a year of the seeded tenant by day, in Europe/Paris.
    Summarize,
    /// `get` over REST/JSON: `GET /v1/calls/{id}` on a keep-alive HTTP/1.1 connection.
    GetRest,
    /// `list` over REST/JSON: `GET /v1/calls?pageSize=50`.
    ListRest,
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            "ping" => Workload::Ping,
            "create" => Workload::Create,
            "get" => Workload::Get,
            "list" => Workload::List,
            "list-one" => Workload::ListOne,
            "list-deep" => Workload::ListDeep,
            "search" => Workload::Search,
            "update" => Workload::Update,
            "mixed" => Workload::Mixed,
            "summarize" => Workload::Summarize,
            "get-rest" => Workload::GetRest,
            "list-rest" => Workload::ListRest,
            other => return Err(format!("unknown workload {other:?}")),
        })
    }
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Ping => "ping",
            Workload::Create => "create",
            Workload::Get => "get",
            Workload::List => "list",
            Workload::ListOne => "list-one",
            Workload::ListDeep => "list-deep",
            Workload::Search => "search",
            Workload::Update => "update",
            Workload::Mixed => "mixed",
            Workload::Summarize => "summarize",
            Workload::GetRest => "get-rest",
            Workload::ListRest => "list-rest",
        }
    }

    /// Whether the workload speaks REST/JSON rather than gRPC.
    pub fn is_rest(self) -> bool {
        matches!(self, Workload::GetRest | Workload::ListRest)
    }
}

/// What every request of a run shares.
pub struct Target {
    pub authorization: MetadataValue<tonic::metadata::Ascii>,
    /// Seeded calls are numbered 1..=seeded (see [`seeded_id`]).
    pub seeded: u64,
    /// The page token of the deep page, for `list-deep`.
    pub deep_page_token: String,
    /// Length of the digit runs `search` looks for.
    pub search_length: usize,
    /// The REST door's client, for the REST workloads.
    pub rest: Option<RestClient>,
}

impl Target {
    pub fn new(key: &str, seeded: u64, search_length: usize) -> anyhow::Result<Self> {
        Ok(Target {
            authorization: format!("Bearer {key}").parse()?,
            seeded,
            deep_page_token: String::new(),
            search_length,
            rest: None,
        })
    }

    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request.set_timeout(REQUEST_TIMEOUT);
        request
    }

    fn rest(&self) -> Result<&RestClient, Status> {
        self.rest
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("no REST client (--rest-address)"))
    }

    fn random_seeded_id(&self, rng: &mut SmallRng) -> String {
        seeded_id(rng.random_range(1..=self.seeded.max(1))).to_string()
    }
}

/// Sends one request of `workload`; `sequence` seeds its randomness.
pub async fn send(
    workload: Workload,
    target: Arc<Target>,
    channel: Channel,
    sequence: u64,
) -> Result<(), Status> {
    let mut client = CallServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    let mut generator = CallGenerator::new(sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xBE7C);
    let workload = match workload {
        Workload::Mixed => match generator.rng().random_range(0..100) {
            0..70 => Workload::Get,
            70..90 => Workload::List,
            90..98 => Workload::Create,
            _ => Workload::Update,
        },
        other => other,
    };
    match workload {
        Workload::Ping => {
            let mut request = Request::new(HealthCheckRequest::default());
            request.set_timeout(REQUEST_TIMEOUT);
            HealthClient::new(channel).check(request).await?;
        }
        Workload::Create => {
            let call = generator.next_call(1_000_000_000 + sequence).to_proto();
            client
                .create_call(target.request(pb::CreateCallRequest {
                    call: Some(call),
                    request_id: String::new(),
                }))
                .await?;
        }
        Workload::Get => {
            let id = target.random_seeded_id(generator.rng());
            client
                .get_call(target.request(pb::GetCallRequest { id }))
                .await?;
        }
        Workload::List => {
            let page = list_page(
                channel,
                target.request(pb::ListCallsRequest {
                    page_size: PAGE_SIZE,
                    ..pb::ListCallsRequest::default()
                }),
            )
            .await?;
            expect_calls(&page)?;
        }
        Workload::ListOne => {
            list_page(
                channel,
                target.request(pb::ListCallsRequest {
                    page_size: 1,
                    ..pb::ListCallsRequest::default()
                }),
            )
            .await?;
        }
        Workload::ListDeep => {
            let page = list_page(
                channel,
                target.request(pb::ListCallsRequest {
                    page_size: PAGE_SIZE,
                    page_token: target.deep_page_token.clone(),
                    ..pb::ListCallsRequest::default()
                }),
            )
            .await?;
            expect_calls(&page)?;
        }
        Workload::Search => {
            let search = generator.search_digits(target.search_length);
            list_page(
                channel,
                target.request(pb::ListCallsRequest {
                    page_size: PAGE_SIZE,
                    search,
                    ..pb::ListCallsRequest::default()
                }),
            )
            .await?;
        }
        Workload::Update => {
            let id = target.random_seeded_id(generator.rng());
            let status = generator.rng().random_range(1..=6);
            client
                .update_call(target.request(pb::UpdateCallRequest {
                    call: Some(pb::Call {
                        id,
                        status,
                        ..pb::Call::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["status".to_owned()],
                    }),
                }))
                .await?;
        }
        Workload::Summarize => {
            let summary = client
                .summarize_calls(target.request(summarize_a_year()))
                .await?
                .into_inner();
            if summary.summaries.is_empty() {
                return Err(Status::internal("a year of the seeded tenant has no calls"));
            }
        }
        Workload::GetRest => {
            let id = target.random_seeded_id(generator.rng());
            target.rest()?.get_call(&id).await?;
        }
        Workload::ListRest => {
            let calls = target.rest()?.list_calls(PAGE_SIZE).await?;
            if calls == 0 {
                return Err(Status::internal("the page holds no calls"));
            }
        }
        Workload::Mixed => unreachable!("mixed picks one of the others"),
    }
    Ok(())
}

/// The year before the seeded tenant's newest call (1 November 2026), by Paris day: the
/// request `summarize` sends and `bench/pgbench/summarize.sql` runs as SQL.
pub fn summarize_a_year() -> pb::SummarizeCallsRequest {
    let timestamp = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    pb::SummarizeCallsRequest {
        // 2025-11-01T00:00:00Z and 2026-11-01T00:00:00Z.
        time_min: timestamp(1_761_955_200),
        time_max: timestamp(1_793_491_200),
        interval: pb::SummaryInterval::Day as i32,
        time_zone: "Europe/Paris".to_owned(),
        ..pb::SummarizeCallsRequest::default()
    }
}

/// A list of the seeded tenant that comes back empty is a failure, however fast.
fn expect_calls(page: &PageSummary) -> Result<(), Status> {
    if page.calls == 0 {
        return Err(Status::internal("the page holds no calls"));
    }
    Ok(())
}

/// Walks the page tokens of the newest-first list down to page `depth` (1-based) and returns
/// the token that fetches it.
pub async fn deep_page_token(
    target: &Target,
    channel: Channel,
    depth: usize,
) -> anyhow::Result<String> {
    let mut client = CallServiceClient::new(channel);
    let mut token = String::new();
    for page in 1..depth {
        let response = client
            .list_calls(target.request(pb::ListCallsRequest {
                page_size: PAGE_SIZE,
                page_token: token.clone(),
                ..pb::ListCallsRequest::default()
            }))
            .await?
            .into_inner();
        if response.next_page_token.is_empty() {
            anyhow::bail!("the list ends at page {page}, before page {depth}");
        }
        token = response.next_page_token;
    }
    Ok(token)
}
