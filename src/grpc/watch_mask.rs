//! UpdateWatch's field mask: which fields of the request replace the stored ones.

use prost_types::FieldMask;

use crate::{
    error::{quote, Violations},
    pb::calls::v1 as pb,
    Error,
};

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

/// `current` with the fields of `patch` named by the mask (or, without one, set in `patch`).
pub fn apply_mask(
    current: &pb::Watch,
    patch: &pb::Watch,
    mask: Option<&FieldMask>,
) -> Result<pb::Watch, Error> {
    let paths: Vec<String> = match mask.map(|mask| mask.paths.as_slice()).unwrap_or_default() {
        [] => set_fields(patch),
        [only] if only == "*" => MASK_PATHS.iter().map(|path| (*path).to_owned()).collect(),
        paths => paths.to_vec(),
    };
    if paths.is_empty() {
        return Err(Error::invalid("watch", "sets no field to update"));
    }
    let mut violations = Violations::default();
    let mut merged = current.clone();
    for path in &paths {
        match path.as_str() {
            "name" => merged.name.clone_from(&patch.name),
            "address" => merged.address.clone_from(&patch.address),
            "basic_auth" => merged.basic_auth.clone_from(&patch.basic_auth),
            "basic_auth.username" | "basic_auth.password" => {
                let from = patch.basic_auth.clone().unwrap_or_default();
                let into = merged.basic_auth.get_or_insert_with(Default::default);
                if path == "basic_auth.username" {
                    into.username = from.username;
                } else {
                    into.password = from.password;
                }
            }
            "http_request_headers" => merged
                .http_request_headers
                .clone_from(&patch.http_request_headers),
            "schema" => merged.schema.clone_from(&patch.schema),
            "method" => merged.method = patch.method,
            "status" => merged.status = patch.status,
            "oauth2_auth" => merged.oauth2_auth.clone_from(&patch.oauth2_auth),
            "signature" => merged.signature.clone_from(&patch.signature),
            "signature.enabled" | "signature.crypto_key_ids" => {
                let from = patch.signature.clone().unwrap_or_default();
                let into = merged.signature.get_or_insert_with(Default::default);
                if path == "signature.enabled" {
                    into.enabled = from.enabled;
                } else {
                    into.crypto_key_ids = from.crypto_key_ids;
                }
            }
            "add_previous_data" => merged.add_previous_data = patch.add_previous_data,
            other => violations.add(
                "update_mask",
                format!("{} is not a writable field of Watch", quote(other)),
            ),
        }
    }
    violations.finish(|| merged)
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
