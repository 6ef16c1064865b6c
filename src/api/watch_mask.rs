//! UpdateWatch's field mask: which fields of the request replace the stored ones, read into a
//! domain [`WatchPatch`] (the service applies it).

use prost_types::FieldMask;

use super::watch_convert;
use crate::{domain::WatchPatch, error::quote, pb::calls::v1 as pb};

/// The paths UpdateWatch accepts in its mask.
const MASK_PATHS: &[&str] = &[
    "name",
    "address",
    "basic_auth",
    "basic_auth.username",
    "basic_auth.password",
    "http_request_headers",
    "schema",
    "method",
    "status",
    "oauth2_auth",
    "signature",
    "signature.enabled",
    "signature.crypto_key_ids",
    "add_previous_data",
];

/// The domain patch UpdateWatch's request asks for: the fields of `patch` named by the mask
/// or, without one, those set in `patch`. Paths a watch does not have are its unknown fields.
pub fn watch_patch(patch: &pb::Watch, mask: Option<&FieldMask>) -> WatchPatch {
    let paths: Vec<String> = match mask.map(|mask| mask.paths.as_slice()).unwrap_or_default() {
        [] => set_fields(patch),
        [only] if only == "*" => MASK_PATHS.iter().map(|path| (*path).to_owned()).collect(),
        paths => paths.to_vec(),
    };
    let basic = patch.basic_auth.clone().unwrap_or_default();
    let signature = patch.signature.clone().unwrap_or_default();
    let mut domain_patch = WatchPatch::default();
    for path in &paths {
        match path.as_str() {
            "name" => domain_patch.name = Some(patch.name.clone()),
            "address" => domain_patch.address = Some(patch.address.clone()),
            "basic_auth" => {
                domain_patch.basic_username = Some(basic.username.clone());
                domain_patch.basic_password = Some(basic.password.clone());
            }
            "basic_auth.username" => domain_patch.basic_username = Some(basic.username.clone()),
            "basic_auth.password" => domain_patch.basic_password = Some(basic.password.clone()),
            "http_request_headers" => {
                domain_patch.headers = Some(watch_convert::headers(&patch.http_request_headers));
            }
            "schema" => domain_patch.schema = Some(patch.schema.clone()),
            "method" => {
                let method = watch_convert::method(patch.method, &mut domain_patch.unreadable);
                domain_patch.method = Some(method);
            }
            "status" => {
                let enabled = watch_convert::enabled(patch.status, &mut domain_patch.unreadable);
                domain_patch.enabled = Some(enabled);
            }
            "oauth2_auth" => {
                domain_patch.oauth2 = Some(watch_convert::oauth2_draft(patch.oauth2_auth.as_ref()));
            }
            "signature" => {
                domain_patch.signature_enabled = Some(signature.enabled);
                domain_patch.crypto_key_ids = Some(signature.crypto_key_ids.clone());
            }
            "signature.enabled" => domain_patch.signature_enabled = Some(signature.enabled),
            "signature.crypto_key_ids" => {
                domain_patch.crypto_key_ids = Some(signature.crypto_key_ids.clone());
            }
            "add_previous_data" => domain_patch.add_previous_data = Some(patch.add_previous_data),
            other => domain_patch.unknown_fields.add(
                "update_mask",
                format!("{} is not a writable field of Watch", quote(other)),
            ),
        }
    }
    domain_patch
}

fn set_fields(patch: &pb::Watch) -> Vec<String> {
    [
        ("name", !patch.name.is_empty()),
        ("address", !patch.address.is_empty()),
        ("basic_auth", patch.basic_auth.is_some()),
        (
            "http_request_headers",
            !patch.http_request_headers.is_empty(),
        ),
        ("schema", !patch.schema.is_empty()),
        ("method", patch.method != 0),
        ("status", patch.status != 0),
        ("oauth2_auth", patch.oauth2_auth.is_some()),
        ("signature", patch.signature.is_some()),
        ("add_previous_data", patch.add_previous_data),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(path, _)| path.to_owned())
    .collect()
}
