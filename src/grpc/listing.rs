//! ListCalls: request validation, page tokens bound to their filters, and sync tokens.
//!
//! Paging is keyset (never OFFSET): a page token holds the sort key of the last call sent, so
//! concurrent inserts neither duplicate nor skip rows. Tokens are sealed (see [`crate::tokens`])
//! and carry the tenant and filters they were issued for.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    call_page::{EncodedPage, PageEncoder},
    calls::CallApi,
    convert,
};
use crate::{
    domain::digits_of,
    domain::{Cursor, Position},
    error::Violations,
    feed::SyncToken,
    pb::calls::v1 as pb,
    store::{CallFilters, CallQuery, ListCursor, Tenant},
    Error,
};

const PAGE_TOKEN_KIND: &str = "page";
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;
/// A page ends at this many encoded bytes even before `page_size` calls: a client's 4 MiB
/// message limit must never refuse a page (1,000 calls with every field at its limit would
/// take about 4.5 MiB).
const MAX_PAGE_BYTES: usize = 1 << 20;

/// The filters a listing runs with; a page token is only valid with the same ones.
#[derive(Debug, Clone, Serialize)]
struct ListFilters {
    time_min_micros: Option<i64>,
    time_max_micros: Option<i64>,
    tool_id: Option<String>,
    search_digits: Option<String>,
    /// The sync token's cursor, for a sync listing.
    sync_from: Option<Cursor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum PageKey {
    Newest { start_time_micros: i64, id: Uuid },
    Changes(Position),
}

/// Where the next page starts. Sealed with the tenant and filters as its binding, so it opens
/// only for the same tenant repeating the same filters.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageToken {
    barrier: i64,
    /// What the first page saw above the barrier; the final sync token carries it.
    seen: Vec<Position>,
    after: PageKey,
}

pub async fn list_calls(
    api: &CallApi,
    tenant: &Tenant,
    request: &pb::ListCallsRequest,
) -> Result<EncodedPage, Error> {
    let (filters, page_size) = validate(api, tenant, request)?;
    if let Some(sync_from) = &filters.sync_from {
        if sync_from.after < api.store.change_log_horizon().await? {
            return Err(Error::SyncTokenExpired);
        }
    }
    let (cursor, barrier, first_page_seen) = if request.page_token.is_empty() {
        let cursor = match &filters.sync_from {
            Some(sync_from) => ListCursor::Changes {
                after: sync_from.after,
            },
            None => ListCursor::Newest { after: None },
        };
        (cursor, None, None)
    } else {
        let token = open_page_token(api, tenant, &filters, &request.page_token)?;
        (
            cursor_after(&token.after)?,
            Some(token.barrier),
            Some(token.seen),
        )
    };
    let query = CallQuery {
        tenant_id: tenant.id,
        filters: CallFilters {
            time_min: filters
                .time_min_micros
                .and_then(chrono::DateTime::from_timestamp_micros),
            time_max: filters
                .time_max_micros
                .and_then(chrono::DateTime::from_timestamp_micros),
            tool_id: filters.tool_id.clone(),
            search_digits: filters.search_digits.clone(),
        },
        cursor,
        barrier,
        limit: page_size,
    };
    let mut page = api.store.list_calls(&query).await?;
    let seen = first_page_seen.unwrap_or(std::mem::take(&mut page.seen));
    // Each call is encoded as it is read; the page's tokens follow the calls.
    let calls = page.calls();
    let mut encoder = PageEncoder::with_capacity(calls.len());
    let mut last_read = None;
    let mut cut_short = false;
    for call in calls {
        if encoder.encoded_len() >= MAX_PAGE_BYTES {
            cut_short = true;
            break;
        }
        let call = call?;
        // Changes the token's holder already has (they committed above its barrier).
        let had = filters
            .sync_from
            .as_ref()
            .is_some_and(|sync_from| sync_from.seen.contains(&call.position));
        if !had {
            encoder.push_call(&call);
        }
        last_read = Some(call);
    }
    // The next page starts after the last row read, sent or not: a page of changes the holder
    // had may be empty and still be followed by more.
    let next_page_token = match last_read {
        Some(last) if page.has_more || cut_short => {
            let after = match filters.sync_from {
                Some(_) => PageKey::Changes(last.position),
                None => PageKey::Newest {
                    start_time_micros: last.start_time.0,
                    id: last.id,
                },
            };
            let token = PageToken {
                barrier: page.barrier,
                seen: seen.clone(),
                after,
            };
            api.sealer
                .seal(PAGE_TOKEN_KIND, &(tenant.id, &filters), &token)?
        }
        _ => String::new(),
    };
    // A sync token means "you have everything up to here": only true for unfiltered lists.
    let syncable = filters.time_min_micros.is_none()
        && filters.time_max_micros.is_none()
        && filters.search_digits.is_none();
    let next_sync_token = if next_page_token.is_empty() && syncable {
        let below_barrier = Position::below_barrier(page.barrier);
        let cursor = match &filters.sync_from {
            // A sync listing reads only below its barrier: it has what its token had, and more.
            Some(sync_from) => {
                let mut cursor = sync_from.clone();
                cursor.advance(below_barrier);
                cursor
            }
            // A full listing showed every visible call, those changed above the barrier too.
            None => Cursor {
                after: below_barrier,
                seen,
            },
        };
        SyncToken {
            tenant_id: tenant.id,
            tool_id: filters.tool_id.clone().unwrap_or_default(),
            search_digits: String::new(),
            cursor,
        }
        .seal(&api.sealer)?
    } else {
        String::new()
    };
    Ok(encoder.finish(&next_page_token, &next_sync_token))
}

fn validate(
    api: &CallApi,
    tenant: &Tenant,
    request: &pb::ListCallsRequest,
) -> Result<(ListFilters, usize), Error> {
    let mut violations = Violations::default();
    let page_size = match usize::try_from(request.page_size) {
        Err(_) => {
            violations.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE
        }
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(size) => size.min(MAX_PAGE_SIZE),
    };
    let time_min = request
        .time_min
        .as_ref()
        .and_then(|time| violations.check(convert::instant("time_min", time)));
    let time_max = request
        .time_max
        .as_ref()
        .and_then(|time| violations.check(convert::instant("time_max", time)));
    if let (Some(time_min), Some(time_max)) = (time_min, time_max) {
        if time_min >= time_max {
            violations.add("time_max", "must be after time_min");
        }
    }
    let tool_id = Some(request.tool_id.clone()).filter(|tool_id| !tool_id.is_empty());
    let search_digits = match request.search.as_str() {
        "" => None,
        search => {
            let digits = digits_of(search);
            if digits.is_empty() {
                violations.add("search", "must contain digits: it matches phone numbers");
            }
            Some(digits)
        }
    };
    let mut sync_from = None;
    if !request.sync_token.is_empty() {
        if time_min.is_some() || time_max.is_some() || search_digits.is_some() {
            violations.add(
                "sync_token",
                "cannot be combined with time_min, time_max or search",
            );
        } else {
            sync_from = violations
                .check(SyncToken::open(
                    &api.sealer,
                    "sync_token",
                    &request.sync_token,
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

fn open_page_token(
    api: &CallApi,
    tenant: &Tenant,
    filters: &ListFilters,
    page_token: &str,
) -> Result<PageToken, Error> {
    api.sealer
        .open(PAGE_TOKEN_KIND, &(tenant.id, filters), page_token)
        .ok_or_else(|| {
            Error::invalid(
                "page_token",
                "is not a page token issued to this tenant for these filters: repeat the \
                 filters of the request that returned it",
            )
        })
}

fn cursor_after(key: &PageKey) -> Result<ListCursor, Error> {
    Ok(match key {
        PageKey::Newest {
            start_time_micros,
            id,
        } => {
            let start_time = chrono::DateTime::from_timestamp_micros(*start_time_micros)
                .ok_or_else(|| Error::invalid("page_token", "is corrupt"))?;
            ListCursor::Newest {
                after: Some((start_time, *id)),
            }
        }
        PageKey::Changes(position) => ListCursor::Changes { after: *position },
    })
}
