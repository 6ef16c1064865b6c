//! A ListCalls request checked: its page size and the filters it runs with, every bad field
//! reported at once. The filters are what a page token is bound to.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    domain::{is_timestamp, Cursor, Position},
    error::Violations,
    feed::SyncToken,
    service::calls::{search_filter, time_window, tool_filter},
    store::Tenant,
    tokens::TokenSealer,
    Error,
};

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// A ListCalls request as the front door read it; empty strings mean "not given".
#[derive(Debug, Clone, Copy, Default)]
pub struct ListCallsInput<'a> {
    /// 0 takes the default; more than the maximum takes the maximum; negative is refused.
    pub page_size: i32,
    pub page_token: &'a str,
    pub sync_token: &'a str,
    pub time_min: Option<ClientInstant>,
    pub time_max: Option<ClientInstant>,
    pub tool_id: &'a str,
    pub search: &'a str,
}

/// An instant as a client sent it, before the service has checked that it is one: seconds
/// since the epoch and a non-negative fraction of the next second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInstant {
    pub seconds: i64,
    pub nanos: i32,
}

impl ClientInstant {
    /// The instant, limited to years 1 to 9999 (what every store and client agrees on).
    pub(crate) fn checked(self, field: &str) -> Result<DateTime<Utc>, Error> {
        u32::try_from(self.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(self.seconds, nanos))
            .filter(|time| is_timestamp(*time))
            .ok_or_else(|| Error::invalid(field, "must be a timestamp between years 1 and 9999"))
    }
}

/// The filters a listing runs with; a page token is only valid with the same ones.
///
/// Serialized as a page token's binding (postcard, by position): reordering the fields
/// invalidates the page tokens clients hold.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct ListFilters {
    pub time_min_micros: Option<i64>,
    pub time_max_micros: Option<i64>,
    pub tool_id: Option<String>,
    pub search_digits: Option<String>,
    /// The sync token's cursor, for a sync listing.
    pub sync_from: Option<Cursor>,
}

impl ListFilters {
    /// A sync token means "you have everything up to here": only true for lists that no time
    /// window or search narrowed.
    pub fn is_syncable(&self) -> bool {
        self.time_min_micros.is_none()
            && self.time_max_micros.is_none()
            && self.search_digits.is_none()
    }

    /// Whether a sync listing's token holder already has the change at `position` (it
    /// committed above the token's barrier and was seen then).
    pub fn holder_had(&self, position: Position) -> bool {
        self.sync_from
            .as_ref()
            .is_some_and(|sync_from| sync_from.seen.contains(&position))
    }
}

/// The request's filters and page size, every bad field reported at once.
pub(super) fn validate(
    sealer: &TokenSealer,
    tenant: &Tenant,
    request: &ListCallsInput<'_>,
) -> Result<(ListFilters, usize), Error> {
    let mut violations = Violations::default();
    let page_size = violations
        .check(page_size(request.page_size))
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let (time_min, time_max) = time_window(request.time_min, request.time_max, &mut violations);
    let tool_id = tool_filter(request.tool_id);
    let search_digits = search_filter(request.search, &mut violations);
    let mut sync_from = None;
    if !request.sync_token.is_empty() {
        // A sync token stands for every change of the unnarrowed list (see `is_syncable`).
        if time_min.is_some() || time_max.is_some() || search_digits.is_some() {
            violations.add(
                "sync_token",
                "cannot be combined with time_min, time_max or search",
            );
        } else {
            sync_from = violations
                .check(SyncToken::open(
                    sealer,
                    "sync_token",
                    request.sync_token,
                    tenant.id,
                    tool_id.as_deref().unwrap_or_default(),
                    "",
                ))
                .map(|token| token.cursor);
        }
    }
    violations.finish(|| {
        let filters = ListFilters {
            time_min_micros: time_min.map(|time| time.timestamp_micros()),
            time_max_micros: time_max.map(|time| time.timestamp_micros()),
            tool_id,
            search_digits,
            sync_from,
        };
        (filters, page_size)
    })
}

/// How many calls a page holds at most: 0 takes the default, more than the maximum takes the
/// maximum (a client asking for much gets pages, not an error).
fn page_size(requested: i32) -> Result<usize, Error> {
    match usize::try_from(requested) {
        Err(_) => Err(Error::invalid("page_size", "must not be negative")),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::calls::fixtures::{refused_fields, sealer, tenant};

    fn sync_token(sealer: &TokenSealer, tenant: &Tenant, tool_id: &str) -> String {
        SyncToken {
            tenant_id: tenant.id,
            tool_id: tool_id.to_owned(),
            search_digits: String::new(),
            cursor: Cursor::at(Position { tx: 7, seq: 1 }),
        }
        .seal(sealer)
        .expect("a sync token seals")
    }

    #[test]
    fn page_size_zero_takes_the_default_and_a_large_one_the_maximum() {
        assert_eq!(page_size(0).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(20).ok(), Some(20));
        assert_eq!(page_size(i32::MAX).ok(), Some(MAX_PAGE_SIZE));
    }

    #[test]
    fn a_negative_page_size_is_refused() {
        let request = ListCallsInput {
            page_size: -1,
            ..ListCallsInput::default()
        };
        let refused = refused_fields(validate(&sealer(), &tenant(), &request));
        assert_eq!(refused, ["page_size"]);
    }

    #[test]
    fn a_time_window_must_be_real_instants_with_its_end_after_its_start() {
        let at = |seconds| Some(ClientInstant { seconds, nanos: 0 });
        let backwards = ListCallsInput {
            time_min: at(2_000),
            time_max: at(1_000),
            ..ListCallsInput::default()
        };
        assert_eq!(
            refused_fields(validate(&sealer(), &tenant(), &backwards)),
            ["time_max"]
        );
        let not_instants = ListCallsInput {
            time_min: Some(ClientInstant {
                seconds: 0,
                nanos: -1,
            }),
            // 1 January 10000.
            time_max: at(253_402_300_800),
            ..ListCallsInput::default()
        };
        assert_eq!(
            refused_fields(validate(&sealer(), &tenant(), &not_instants)),
            ["time_min", "time_max"]
        );
    }

    #[test]
    fn a_search_without_digits_is_refused() {
        let request = ListCallsInput {
            search: "abc",
            ..ListCallsInput::default()
        };
        assert_eq!(
            refused_fields(validate(&sealer(), &tenant(), &request)),
            ["search"]
        );
    }

    #[test]
    fn a_sync_token_cannot_be_combined_with_a_narrowing_filter() {
        let (sealer, tenant) = (sealer(), tenant());
        let token = sync_token(&sealer, &tenant, "");
        let request = ListCallsInput {
            sync_token: &token,
            search: "555",
            ..ListCallsInput::default()
        };
        assert_eq!(
            refused_fields(validate(&sealer, &tenant, &request)),
            ["sync_token"]
        );
    }

    #[test]
    fn a_sync_token_opens_only_for_its_tenant_and_tool() {
        let (sealer, tenant) = (sealer(), tenant());
        let token = sync_token(&sealer, &tenant, "tool-a");
        let request = |tool_id| ListCallsInput {
            sync_token: &token,
            tool_id,
            ..ListCallsInput::default()
        };
        let opened = validate(&sealer, &tenant, &request("tool-a"));
        let sync_from = opened.ok().and_then(|(filters, _)| filters.sync_from);
        assert_eq!(sync_from, Some(Cursor::at(Position { tx: 7, seq: 1 })));
        assert_eq!(
            refused_fields(validate(&sealer, &tenant, &request("tool-b"))),
            ["sync_token"]
        );
        assert_eq!(
            refused_fields(validate(&sealer, &self::tenant(), &request("tool-a"))),
            ["sync_token"]
        );
    }

    #[test]
    fn only_a_list_no_window_or_search_narrowed_is_syncable() {
        let by_tool = ListFilters {
            tool_id: Some("tool-a".to_owned()),
            ..ListFilters::default()
        };
        assert!(by_tool.is_syncable());
        let searched = ListFilters {
            search_digits: Some("555".to_owned()),
            ..ListFilters::default()
        };
        assert!(!searched.is_syncable());
        let windowed = ListFilters {
            time_min_micros: Some(0),
            ..ListFilters::default()
        };
        assert!(!windowed.is_syncable());
    }
}
