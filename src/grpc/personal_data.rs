//! Conversions for the calls-as-personal-data RPCs (ExportCalls, SummarizeCalls, PurgeCalls,
//! GetTenantSettings): proto requests to the service's inputs, its results to proto messages.

use std::time::Duration;

use super::convert;
use crate::{
    pb::calls::v1 as pb,
    service::calls::{
        CallSummary, ExportCallsInput, ExportEvent, PurgeCallsInput, PurgeOutcome,
        SummarizeCallsInput, Summary, TenantSettings,
    },
    store::{SummaryGrouping, SummaryInterval},
};

pub fn export_input(request: &pb::ExportCallsRequest) -> ExportCallsInput<'_> {
    ExportCallsInput {
        time_min: request.time_min.as_ref().map(convert::client_instant),
        time_max: request.time_max.as_ref().map(convert::client_instant),
        search: &request.search,
        tool_id: &request.tool_id,
    }
}

pub fn export_message(event: ExportEvent) -> pb::ExportCallsResponse {
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

pub fn summarize_input(request: &pb::SummarizeCallsRequest) -> SummarizeCallsInput<'_> {
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

pub fn summary_response(summary: Summary) -> pb::SummarizeCallsResponse {
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

pub fn purge_input(request: &pb::PurgeCallsRequest) -> PurgeCallsInput<'_> {
    PurgeCallsInput {
        phone_number: &request.phone_number,
        time_min: request.time_min.as_ref().map(convert::client_instant),
        time_max: request.time_max.as_ref().map(convert::client_instant),
        force: request.force,
    }
}

pub fn purge_response(outcome: PurgeOutcome) -> pb::PurgeCallsResponse {
    pb::PurgeCallsResponse {
        purge_count: outcome.purge_count,
        purge_sample: outcome
            .purge_sample
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

pub fn tenant_settings(settings: TenantSettings) -> pb::GetTenantSettingsResponse {
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
