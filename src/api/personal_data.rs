//! The calls-as-personal-data RPCs of `calls.v1.CallService` (ExportCalls, SummarizeCalls,
//! PurgeCalls, GetTenantSettings), one transport-free function each: the request message in,
//! the [`Calls`] service called, the response message (or, for ExportCalls, a stream of them)
//! out.

use std::time::Duration;

use futures::{Stream, StreamExt};

use super::convert;
use crate::{
    pb::calls::v1 as pb,
    service::calls::{
        CallSummary, Calls, ExportCallsInput, ExportEvent, PurgeCallsInput, PurgeOutcome,
        SummarizeCallsInput, Summary, TenantSettings,
    },
    store::{SummaryGrouping, SummaryInterval, Tenant},
    Error,
};

/// Starts an export; its messages follow as the caller reads them.
pub async fn export_calls(
    calls: &Calls,
    tenant: &Tenant,
    request: &pb::ExportCallsRequest,
) -> Result<impl Stream<Item = Result<pb::ExportCallsResponse, Error>> + Send + 'static, Error> {
    let events = calls.export(tenant, &export_input(request)).await?;
    Ok(events.map(|event| event.map(export_message)))
}

pub async fn summarize_calls(
    calls: &Calls,
    tenant: &Tenant,
    request: &pb::SummarizeCallsRequest,
) -> Result<pb::SummarizeCallsResponse, Error> {
    let summary = calls.summarize(tenant, &summarize_input(request)).await?;
    Ok(summary_response(summary))
}

pub async fn purge_calls(
    calls: &Calls,
    tenant: &Tenant,
    request: &pb::PurgeCallsRequest,
) -> Result<pb::PurgeCallsResponse, Error> {
    let outcome = calls.purge(tenant, &purge_input(request)).await?;
    Ok(purge_response(outcome))
}

pub async fn get_tenant_settings(
    calls: &Calls,
    tenant: &Tenant,
    _request: &pb::GetTenantSettingsRequest,
) -> Result<pb::GetTenantSettingsResponse, Error> {
    Ok(tenant_settings(calls.tenant_settings(tenant).await?))
}

fn export_input(request: &pb::ExportCallsRequest) -> ExportCallsInput<'_> {
    ExportCallsInput {
        time_min: request.time_min.as_ref().map(convert::client_instant),
        time_max: request.time_max.as_ref().map(convert::client_instant),
        search: &request.search,
        tool_id: &request.tool_id,
    }
}

fn export_message(event: ExportEvent) -> pb::ExportCallsResponse {
    match event {
        ExportEvent::Calls(calls) => pb::ExportCallsResponse {
            calls: calls.into_iter().map(convert::call_to_proto).collect(),
            next_sync_token: String::new(),
        },
        ExportEvent::Complete { next_sync_token } => pb::ExportCallsResponse {
            calls: Vec::new(),
            next_sync_token,
        },
    }
}

fn summarize_input(request: &pb::SummarizeCallsRequest) -> SummarizeCallsInput<'_> {
    let interval = match pb::SummaryInterval::try_from(request.interval) {
        Ok(pb::SummaryInterval::Day) => Some(SummaryInterval::Day),
        Ok(pb::SummaryInterval::Week) => Some(SummaryInterval::Week),
        Ok(pb::SummaryInterval::Month) => Some(SummaryInterval::Month),
        Ok(pb::SummaryInterval::Unspecified) | Err(_) => None,
    };
    let grouping = match pb::SummaryGroupBy::try_from(request.group_by) {
        Ok(pb::SummaryGroupBy::Unspecified) => Some(SummaryGrouping::Nothing),
        Ok(pb::SummaryGroupBy::Status) => Some(SummaryGrouping::Status),
        Ok(pb::SummaryGroupBy::Type) => Some(SummaryGrouping::Type),
        Ok(pb::SummaryGroupBy::Button) => Some(SummaryGrouping::Button),
        Err(_) => None,
    };
    SummarizeCallsInput {
        time_min: request.time_min.as_ref().map(convert::client_instant),
        time_max: request.time_max.as_ref().map(convert::client_instant),
        interval,
        time_zone: &request.time_zone,
        grouping,
        tool_id: &request.tool_id,
    }
}

fn summary_response(summary: Summary) -> pb::SummarizeCallsResponse {
    pb::SummarizeCallsResponse {
        summaries: summary.summaries.into_iter().map(call_summary).collect(),
        time_zone: summary.time_zone.name().to_owned(),
    }
}

fn call_summary(summary: CallSummary) -> pb::CallSummary {
    pb::CallSummary {
        start_date: summary.start_date.format("%Y-%m-%d").to_string(),
        status: convert::status_number(summary.status),
        r#type: convert::call_type_number(summary.call_type),
        button_id: summary.button_id,
        call_count: summary.call_count,
        total_duration: Some(duration(summary.total_duration)),
        average_duration: Some(duration(summary.average_duration)),
    }
}

fn purge_input(request: &pb::PurgeCallsRequest) -> PurgeCallsInput<'_> {
    PurgeCallsInput {
        phone_number: &request.phone_number,
        time_min: request.time_min.as_ref().map(convert::client_instant),
        time_max: request.time_max.as_ref().map(convert::client_instant),
        force: request.force,
    }
}

fn purge_response(outcome: PurgeOutcome) -> pb::PurgeCallsResponse {
    pb::PurgeCallsResponse {
        purge_count: outcome.purge_count,
        purge_sample: outcome
            .purge_sample
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

fn tenant_settings(settings: TenantSettings) -> pb::GetTenantSettingsResponse {
    pb::GetTenantSettingsResponse {
        tenant_settings: Some(pb::TenantSettings {
            name: settings.name,
            time_zone: settings.time_zone.name().to_owned(),
            call_retention: settings.call_retention.map(duration),
        }),
    }
}

fn duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
    }
}
