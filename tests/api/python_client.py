"""A Python client written the way a newcomer would, from nothing but server reflection.

Stubs come from grpcio-reflection's descriptor database, messages from protobuf's
message_factory, JSON (the canonical proto3 form, FieldMask as a string) from json_format,
and error details from grpcio-status. Run by tests/api/python_client.rs:

    python3 python_client.py HOST:PORT API_KEY

Prints one JSON object of what it saw; exits non-zero if a step fails.
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

address, key = sys.argv[1], sys.argv[2]
channel = grpc.insecure_channel(address)
database = ProtoReflectionDescriptorDatabase(channel)
pool = descriptor_pool.DescriptorPool(database)
service = pool.FindServiceByName("calls.v1.CallService")
metadata = [("authorization", f"Bearer {key}")]


def call(method_name, body):
    """Calls a CallService method with a JSON body; returns the answer as JSON."""
    method = service.FindMethodByName(method_name)
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    stub = channel.unary_unary(
        f"/{service.full_name}/{method_name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    request = json_format.Parse(json.dumps(body), request_class())
    return json_format.MessageToDict(stub(request, metadata=metadata))


seen = {}
created = call(
    "CreateCall",
    {
        "call": {
            "callerNumber": "+33 6 12 34 56 78",
            "calledNumber": "06-12-34-56-78",
            "start": {"dateTime": "2026-11-27T09:30:00", "timeZone": "Europe/Paris"},
            "status": "CALL_STATUS_COMPLETED",
        }
    },
)["call"]
call_id = created["id"]
seen["fetched_id"] = call("GetCall", {"id": call_id})["call"]["id"]
updated = call(
    "UpdateCall",
    {
        "call": {
            "id": call_id,
            "status": "CALL_STATUS_NO_ANSWERED",
            "start": {"timeZone": "Europe/London"},
        },
        "updateMask": "status,start.timeZone",
    },
)["call"]
seen["created_id"] = call_id
seen["updated_status"] = updated["status"]
seen["updated_time_zone"] = updated["start"]["timeZone"]
seen["updated_date_time"] = updated["start"]["dateTime"]

try:
    call("GetCall", {"id": "not-a-call-id"})
    sys.exit("GetCall with a bad id succeeded")
except grpc.RpcError as error:
    status = rpc_status.from_call(error)
    seen["error_code"] = error.code().name
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            seen["bad_fields"] = [v.field for v in bad_request.field_violations]
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            seen["reason"] = info.reason

# The files reflection serves the error details and health from, by their names.
seen["files"] = {
    symbol: database.FindFileContainingSymbol(symbol).name
    for symbol in ["google.rpc.BadRequest", "google.rpc.Status", "grpc.health.v1.Health"]
}
print(json.dumps(seen))
