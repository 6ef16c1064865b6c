//! Each RPC's request decoded from its reflected form, run through its function in
//! [`crate::api`] (the same as over gRPC), and its answer written in JSON.

use prost_reflect::DynamicMessage;

use super::{json, routes::Route, Rest};
use crate::{api, pb::calls::v1 as pb, store::Tenant, Error};

/// Runs `$function` of the `$service` on the request, decoded as `$request`.
macro_rules! run {
    ($rest:ident, $route:ident, $message:ident, $tenant:ident, $service:ident,
     $function:path, $request:ty) => {{
        let request: $request = json::typed_request($message)?;
        let response = $function(&$rest.$service, $tenant, &request).await?;
        json::response_json($route, &response)
    }};
}

/// The JSON answer of the unary RPC `route` names.
pub async fn dispatch(
    rest: &Rest,
    route: &Route,
    message: DynamicMessage,
    tenant: &Tenant,
) -> Result<json::JsonAnswer, Error> {
    use api::{calls, watches};
    match route.rpc.full_name() {
        "calls.v1.CallService.CreateCall" => run!(
            rest,
            route,
            message,
            tenant,
            calls,
            calls::create_call,
            pb::CreateCallRequest
        ),
        "calls.v1.CallService.GetCall" => run!(
            rest,
            route,
            message,
            tenant,
            calls,
            calls::get_call,
            pb::GetCallRequest
        ),
        "calls.v1.CallService.UpdateCall" => run!(
            rest,
            route,
            message,
            tenant,
            calls,
            calls::update_call,
            pb::UpdateCallRequest
        ),
        "calls.v1.CallService.DeleteCall" => run!(
            rest,
            route,
            message,
            tenant,
            calls,
            calls::delete_call,
            pb::DeleteCallRequest
        ),
        "calls.v1.CallService.ListCalls" => run!(
            rest,
            route,
            message,
            tenant,
            calls,
            calls::list_calls,
            pb::ListCallsRequest
        ),
        "calls.v1.CallService.SummarizeCalls" => run!(
            rest,
            route,
            message,
            tenant,
            calls,
            api::personal_data::summarize_calls,
            pb::SummarizeCallsRequest
        ),
        "calls.v1.CallService.PurgeCalls" => run!(
            rest,
            route,
            message,
            tenant,
            calls,
            api::personal_data::purge_calls,
            pb::PurgeCallsRequest
        ),
        "calls.v1.CallService.GetTenantSettings" => run!(
            rest,
            route,
            message,
            tenant,
            calls,
            api::personal_data::get_tenant_settings,
            pb::GetTenantSettingsRequest
        ),
        "calls.v1.WatchService.CreateWatch" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::create_watch,
            pb::CreateWatchRequest
        ),
        "calls.v1.WatchService.GetWatch" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::get_watch,
            pb::GetWatchRequest
        ),
        "calls.v1.WatchService.UpdateWatch" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::update_watch,
            pb::UpdateWatchRequest
        ),
        "calls.v1.WatchService.DeleteWatch" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::delete_watch,
            pb::DeleteWatchRequest
        ),
        "calls.v1.WatchService.ListWatches" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::list_watches,
            pb::ListWatchesRequest
        ),
        "calls.v1.WatchService.CreateCryptoKey" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::create_crypto_key,
            pb::CreateCryptoKeyRequest
        ),
        "calls.v1.WatchService.ListCryptoKeys" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::list_crypto_keys,
            pb::ListCryptoKeysRequest
        ),
        "calls.v1.WatchService.DeleteCryptoKey" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::delete_crypto_key,
            pb::DeleteCryptoKeyRequest
        ),
        "calls.v1.WatchService.ListDeliveries" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::list_deliveries,
            pb::ListDeliveriesRequest
        ),
        "calls.v1.WatchService.RetryDelivery" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::retry_delivery,
            pb::RetryDeliveryRequest
        ),
        "calls.v1.WatchService.PreviewWatchPayload" => run!(
            rest,
            route,
            message,
            tenant,
            watches,
            watches::preview_watch_payload,
            pb::PreviewWatchPayloadRequest
        ),
        other => Err(Error::Internal(anyhow::anyhow!(
            "no REST handler for {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::routes::RouteTable;

    /// Every unary RPC this door answers; WatchCalls is served as Server-Sent Events (`sse`).
    const UNARY_RPCS: &[&str] = &[
        "calls.v1.CallService.CreateCall",
        "calls.v1.CallService.GetCall",
        "calls.v1.CallService.UpdateCall",
        "calls.v1.CallService.DeleteCall",
        "calls.v1.CallService.ListCalls",
        "calls.v1.CallService.SummarizeCalls",
        "calls.v1.CallService.PurgeCalls",
        "calls.v1.CallService.GetTenantSettings",
        "calls.v1.WatchService.CreateWatch",
        "calls.v1.WatchService.GetWatch",
        "calls.v1.WatchService.UpdateWatch",
        "calls.v1.WatchService.DeleteWatch",
        "calls.v1.WatchService.ListWatches",
        "calls.v1.WatchService.CreateCryptoKey",
        "calls.v1.WatchService.ListCryptoKeys",
        "calls.v1.WatchService.DeleteCryptoKey",
        "calls.v1.WatchService.ListDeliveries",
        "calls.v1.WatchService.RetryDelivery",
        "calls.v1.WatchService.PreviewWatchPayload",
    ];

    #[test]
    fn every_route_has_a_handler() {
        let routes = RouteTable::from_descriptors(api::descriptors().unwrap()).unwrap();
        for route in routes.routes() {
            let name = route.rpc.full_name();
            assert!(
                route.rpc.is_server_streaming() || UNARY_RPCS.contains(&name),
                "{name} has no handler"
            );
        }
    }
}
