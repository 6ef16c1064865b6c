//! Page tokens: where a listing's next page starts, sealed with the tenant and filters as
//! their binding, so a token opens only for the same tenant repeating the same filters.

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::request::ListFilters;
use crate::{
    domain::Position,
    store::{CallView, ListCursor, Tenant},
    tokens::TokenSealer,
    Error,
};

const PAGE_TOKEN_KIND: &str = "page";

/// The sort key of the last call a page read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum PageKey {
    Newest { start_time_micros: i64, id: Uuid },
    Changes(Position),
}

impl PageKey {
    /// The key the next page starts after: change-log order for a sync listing, newest start
    /// first for the others.
    pub fn after(filters: &ListFilters, last_read: &CallView<'_>) -> Self {
        match filters.sync_from {
            Some(_) => PageKey::Changes(last_read.position),
            None => PageKey::Newest {
                start_time_micros: last_read.start_time.0,
                id: last_read.id,
            },
        }
    }
}

/// Where the next page starts, and what every page of the listing shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PageToken {
    /// The feed barrier of the first page: later pages read under the same one.
    pub barrier: i64,
    /// What the first page saw above the barrier; the final sync token carries it.
    pub seen: Vec<Position>,
    pub after: PageKey,
}

impl PageToken {
    pub fn seal(
        &self,
        sealer: &TokenSealer,
        tenant: &Tenant,
        filters: &ListFilters,
    ) -> Result<String, Error> {
        sealer.seal(PAGE_TOKEN_KIND, &(tenant.id, filters), self)
    }

    /// Opens `page_token` for a request of `tenant` with `filters`; any other tenant or filter
    /// is refused, as is a forged or damaged token.
    pub fn open(
        sealer: &TokenSealer,
        tenant: &Tenant,
        filters: &ListFilters,
        page_token: &str,
    ) -> Result<Self, Error> {
        sealer
            .open(PAGE_TOKEN_KIND, &(tenant.id, filters), page_token)
            .ok_or_else(|| {
                Error::invalid(
                    "page_token",
                    "is not a page token issued to this tenant for these filters: repeat the \
                     filters of the request that returned it",
                )
            })
    }

    /// Where the store resumes reading.
    pub fn cursor(&self) -> Result<ListCursor, Error> {
        Ok(match self.after {
            PageKey::Newest {
                start_time_micros,
                id,
            } => {
                let start_time = DateTime::from_timestamp_micros(start_time_micros)
                    .ok_or_else(|| Error::invalid("page_token", "is corrupt"))?;
                ListCursor::Newest {
                    after: Some((start_time, id)),
                }
            }
            PageKey::Changes(position) => ListCursor::Changes { after: position },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Cursor;

    fn tenant() -> Tenant {
        Tenant {
            id: Uuid::new_v4(),
            name: "tenant".to_owned(),
            time_zone: chrono_tz::UTC,
        }
    }

    fn filters_for_tool(tool_id: &str) -> ListFilters {
        ListFilters {
            tool_id: Some(tool_id.to_owned()),
            ..ListFilters::default()
        }
    }

    #[test]
    fn a_sync_listing_pages_in_change_order_and_a_full_one_by_start_time() {
        let call = super::super::tests::call_at(5);
        let expected = PageKey::Newest {
            start_time_micros: 5,
            id: call.id,
        };
        assert_eq!(PageKey::after(&ListFilters::default(), &call), expected);
        let sync = ListFilters {
            sync_from: Some(Cursor::default()),
            ..ListFilters::default()
        };
        let expected = PageKey::Changes(call.position);
        assert_eq!(PageKey::after(&sync, &call), expected);
    }

    #[test]
    fn a_page_token_opens_only_for_its_tenant_and_its_filters() {
        let sealer = TokenSealer::new(b"test key").expect("a key of any length is accepted");
        let (tenant, other_tenant) = (tenant(), tenant());
        let filters = filters_for_tool("tool-a");
        let token = PageToken {
            barrier: 10,
            seen: Vec::new(),
            after: PageKey::Changes(Position { tx: 3, seq: 1 }),
        };
        let sealed = token
            .seal(&sealer, &tenant, &filters)
            .expect("a page token seals");
        let opened = PageToken::open(&sealer, &tenant, &filters, &sealed);
        assert_eq!(opened.ok().map(|token| token.after), Some(token.after));
        let other_filters = filters_for_tool("tool-b");
        for (tenant, filters) in [(&other_tenant, &filters), (&tenant, &other_filters)] {
            let refused = PageToken::open(&sealer, tenant, filters, &sealed);
            assert!(
                matches!(&refused, Err(Error::InvalidArgument(violations))
                    if violations[0].field == "page_token"),
                "{refused:?}"
            );
        }
    }
}
