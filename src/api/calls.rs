//! `calls.v1.CallService`, one transport-free function per RPC: the request message in, the
//! [`Calls`] service called, the response message out. Both doors call these; gRPC's ListCalls
//! keeps its own page encoder (`grpc/call_page.rs`) and shares [`list_input`].

use chrono::Utc;

use super::convert;
use crate::{
    pb::calls::v1 as pb,
    service::calls::{CallPageSink, CallWatchEvent, Calls, ListCallsInput, WatchCallsInput},
    store::{CallView, ChangeKind, Tenant},
    Error,
};

pub async fn create_call(
    calls: &Calls,
    tenant: &Tenant,
    request: &pb::CreateCallRequest,
) -> Result<pb::CreateCallResponse, Error> {
    let call = request
        .call
        .as_ref()
        .ok_or_else(|| Error::invalid("call", "is required"))?;
    let fields = convert::call_fields(call, tenant.time_zone)?;
    let request_id = Some(request.request_id.as_str()).filter(|id| !id.is_empty());
    let call = calls.create(tenant, request_id, &fields).await?;
    Ok(pb::CreateCallResponse {
        call: Some(convert::call_to_proto(call)),
    })
}

pub async fn get_call(
    calls: &Calls,
    tenant: &Tenant,
    request: &pb::GetCallRequest,
) -> Result<pb::GetCallResponse, Error> {
    let id = convert::call_id("id", &request.id)?;
    let call = calls.get(tenant, id).await?;
    Ok(pb::GetCallResponse {
        call: Some(convert::call_to_proto(call)),
    })
}

pub async fn update_call(
    calls: &Calls,
    tenant: &Tenant,
    request: &pb::UpdateCallRequest,
) -> Result<pb::UpdateCallResponse, Error> {
    let patch = request
        .call
        .as_ref()
        .ok_or_else(|| Error::invalid("call", "is required"))?;
    let id = convert::call_id("call.id", &patch.id)?;
    let paths = super::update_mask::mask_paths(patch, request.update_mask.as_ref())?;
    let expected_etag = (!patch.etag.is_empty()).then_some(patch.etag.as_str());
    // The mask names proto fields: the patch is merged as a proto, then validated like a
    // whole call.
    let call = calls
        .update(tenant, id, expected_etag, |current| {
            let mut merged = convert::call_to_proto(current.clone());
            super::update_mask::apply(&mut merged, patch, &paths);
            convert::call_fields(&merged, tenant.time_zone)
        })
        .await?;
    Ok(pb::UpdateCallResponse {
        call: Some(convert::call_to_proto(call)),
    })
}

pub async fn delete_call(
    calls: &Calls,
    tenant: &Tenant,
    request: &pb::DeleteCallRequest,
) -> Result<pb::DeleteCallResponse, Error> {
    let id = convert::call_id("id", &request.id)?;
    let expected_etag = (!request.etag.is_empty()).then_some(request.etag.as_str());
    calls.delete(tenant, id, expected_etag).await?;
    Ok(pb::DeleteCallResponse {})
}

/// ListCalls' request as the service's input.
pub fn list_input(request: &pb::ListCallsRequest) -> ListCallsInput<'_> {
    ListCallsInput {
        page_size: request.page_size,
        page_token: &request.page_token,
        sync_token: &request.sync_token,
        time_min: request.time_min.as_ref().map(convert::client_instant),
        time_max: request.time_max.as_ref().map(convert::client_instant),
        tool_id: &request.tool_id,
        search: &request.search,
    }
}

/// ListCalls answered as a generated message (gRPC writes its wire form directly instead).
pub async fn list_calls(
    calls: &Calls,
    tenant: &Tenant,
    request: &pb::ListCallsRequest,
) -> Result<pb::ListCallsResponse, Error> {
    calls
        .list(tenant, &list_input(request), MessagePage::default())
        .await?
}

/// A page of calls built as `pb::ListCallsResponse`, measured as its encoding, so the page
/// budget cuts it where gRPC's encoder would.
#[derive(Default)]
struct MessagePage {
    calls: Vec<pb::Call>,
    encoded_len: usize,
    unreadable: Option<Error>,
}

impl CallPageSink for MessagePage {
    type Page = Result<pb::ListCallsResponse, Error>;

    fn reserve(&mut self, calls: usize) {
        self.calls.reserve(calls);
    }

    fn push_call(&mut self, call: &CallView<'_>) {
        match call.to_call() {
            Ok(call) => {
                let call = convert::call_to_proto(call);
                self.encoded_len += prost::encoding::message::encoded_len(1, &call);
                self.calls.push(call);
            }
            Err(error) => {
                self.unreadable.get_or_insert(error);
            }
        }
    }

    fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    fn finish(self, next_page_token: &str, next_sync_token: &str) -> Self::Page {
        if let Some(error) = self.unreadable {
            return Err(error);
        }
        Ok(pb::ListCallsResponse {
            calls: self.calls,
            next_page_token: next_page_token.to_owned(),
            next_sync_token: next_sync_token.to_owned(),
        })
    }
}

/// WatchCalls' request as the service's input.
pub fn watch_input(request: &pb::WatchCallsRequest) -> WatchCallsInput<'_> {
    WatchCallsInput {
        tool_id: &request.tool_id,
        search: &request.search,
        sync_token: &request.sync_token,
        send_initial_state: request.send_initial_state,
    }
}

/// One event of the WatchCalls stream as its message.
pub fn call_event(event: CallWatchEvent) -> pb::CallEvent {
    use pb::CallEventType as Type;
    let now = convert::timestamp(Utc::now());
    match event {
        CallWatchEvent::Changed {
            kind,
            call,
            event_time,
            sync_token,
        } => pb::CallEvent {
            r#type: match kind {
                ChangeKind::Created => Type::Created,
                ChangeKind::Updated => Type::Updated,
                ChangeKind::Deleted => Type::Deleted,
            } as i32,
            call: Some(convert::call_to_proto(call)),
            sync_token,
            event_time: Some(convert::timestamp(event_time)),
        },
        CallWatchEvent::Initial(call) => pb::CallEvent {
            r#type: Type::Initial as i32,
            call: Some(convert::call_to_proto(call)),
            sync_token: String::new(),
            event_time: Some(now),
        },
        CallWatchEvent::InitialStateComplete { sync_token } => pb::CallEvent {
            r#type: Type::InitialStateComplete as i32,
            call: None,
            sync_token,
            event_time: Some(now),
        },
        CallWatchEvent::Heartbeat { sync_token } => pb::CallEvent {
            r#type: Type::Heartbeat as i32,
            call: None,
            sync_token,
            event_time: Some(now),
        },
    }
}
