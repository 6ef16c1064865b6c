//! UpdateCall's field mask (AIP-134): which fields of the request's call replace the stored ones.

use prost_types::FieldMask;

use crate::{
    error::{quote, Violations},
    pb::calls::v1 as pb,
    Error,
};

/// Top-level writable fields: what `*` replaces.
const TOP_LEVEL_FIELDS: &[&str] = &[
    "button_id",
    "client_id",
    "caller_number",
    "called_number",
    "tracking_number",
    "start",
    "duration",
    "status",
    "external_id",
    "type",
    "record",
];
const SUB_FIELDS: &[&str] = &[
    "start.date_time",
    "start.time_zone",
    "record.mime_type",
    "record.url",
];
const OUTPUT_ONLY_FIELDS: &[&str] = &[
    "id",
    "create_time",
    "update_time",
    "etag",
    "deleted",
    "delete_time",
    "start_time",
];

/// The paths to update: the mask's, every writable field for `*`, or the fields set in
/// `patch` when there is no mask.
pub fn mask_paths(patch: &pb::Call, mask: Option<&FieldMask>) -> Result<Vec<String>, Error> {
    let paths = mask.map(|mask| mask.paths.as_slice()).unwrap_or_default();
    if paths.is_empty() {
        let set = fields_set(patch);
        if set.is_empty() {
            return Err(Error::invalid("call", "sets no field to update"));
        }
        return Ok(set);
    }
    if paths == ["*"] {
        return Ok(TOP_LEVEL_FIELDS
            .iter()
            .map(|path| (*path).to_owned())
            .collect());
    }
    let mut violations = Violations::default();
    for path in paths {
        if OUTPUT_ONLY_FIELDS.contains(&path.as_str()) {
            violations.add("update_mask", format!("{} is output only", quote(path)));
        } else if !TOP_LEVEL_FIELDS.contains(&path.as_str()) && !SUB_FIELDS.contains(&path.as_str())
        {
            violations.add(
                "update_mask",
                format!("{} is not a field of Call", quote(path)),
            );
        }
    }
    violations.finish(|| paths.to_vec())
}

fn fields_set(patch: &pb::Call) -> Vec<String> {
    let set = [
        ("button_id", !patch.button_id.is_empty()),
        ("client_id", !patch.client_id.is_empty()),
        ("caller_number", !patch.caller_number.is_empty()),
        ("called_number", !patch.called_number.is_empty()),
        ("tracking_number", !patch.tracking_number.is_empty()),
        ("start", patch.start.is_some()),
        ("duration", patch.duration.is_some()),
        ("status", patch.status != 0),
        ("external_id", !patch.external_id.is_empty()),
        ("type", patch.r#type != 0),
        ("record", patch.record.is_some()),
    ];
    set.iter()
        .filter(|(_, is_set)| *is_set)
        .map(|(path, _)| (*path).to_owned())
        .collect()
}

/// Copies the fields named by `paths` from `patch` into `target`.
pub fn apply(target: &mut pb::Call, patch: &pb::Call, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "button_id" => target.button_id.clone_from(&patch.button_id),
            "client_id" => target.client_id.clone_from(&patch.client_id),
            "caller_number" => target.caller_number.clone_from(&patch.caller_number),
            "called_number" => target.called_number.clone_from(&patch.called_number),
            "tracking_number" => target.tracking_number.clone_from(&patch.tracking_number),
            "start" => target.start.clone_from(&patch.start),
            "start.date_time" => {
                target.start.get_or_insert_default().date_time = patch
                    .start
                    .as_ref()
                    .map(|start| start.date_time.clone())
                    .unwrap_or_default();
            }
            "start.time_zone" => {
                target.start.get_or_insert_default().time_zone = patch
                    .start
                    .as_ref()
                    .map(|start| start.time_zone.clone())
                    .unwrap_or_default();
            }
            "duration" => target.duration = patch.duration,
            "status" => target.status = patch.status,
            "external_id" => target.external_id.clone_from(&patch.external_id),
            "type" => target.r#type = patch.r#type,
            "record" => target.record.clone_from(&patch.record),
            "record.mime_type" => {
                target.record.get_or_insert_default().mime_type = patch
                    .record
                    .as_ref()
                    .map(|record| record.mime_type.clone())
                    .unwrap_or_default();
            }
            "record.url" => {
                target.record.get_or_insert_default().url = patch
                    .record
                    .as_ref()
                    .map(|record| record.url.clone())
                    .unwrap_or_default();
            }
            _ => {} // mask_paths admits only the paths above
        }
    }
}
