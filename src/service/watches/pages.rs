//! Paging of the watch lists (watches, deliveries): the page size a request may ask for, and
//! the sealed token that continues after the last item a front door sent.

use serde::{de::DeserializeOwned, Serialize};

use crate::{tokens::TokenSealer, Error};

/// The most items a page holds, and what a page size of 0 means.
pub const MAX_PAGE_SIZE: usize = 100;

/// What a client asks of one page.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// 0 means the largest page; more than that is capped to it.
    pub page_size: i32,
    /// Empty for the first page, else the `next_page_token` of the previous one.
    pub page_token: String,
}

/// One page as the front door sends it, and the token of the next (empty after the last).
#[derive(Debug)]
pub struct Page<Item> {
    pub items: Vec<Item>,
    pub next_page_token: String,
}

/// How many items a page holds, for a requested size.
pub fn page_size(requested: i32) -> Result<usize, Error> {
    match usize::try_from(requested) {
        Ok(0) => Ok(MAX_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
        Err(_) => Err(Error::invalid("page_size", "must not be negative")),
    }
}

/// The position a page token continues after; `None` for the first page. A token made for
/// another `kind` of list or another `binding` (tenant, watch) is refused.
pub fn open_token<Binding: Serialize + ?Sized, Position: DeserializeOwned>(
    sealer: &TokenSealer,
    kind: &str,
    binding: &Binding,
    page_token: &str,
) -> Result<Option<Position>, Error> {
    if page_token.is_empty() {
        return Ok(None);
    }
    sealer
        .open(kind, binding, page_token)
        .map(Some)
        .ok_or_else(|| Error::invalid("page_token", "is not a valid page token"))
}

/// Builds a page from `rows` (up to one more than `limit`, to learn whether more follow).
/// `render` turns the first `limit` rows into what the front door sends; it may send fewer
/// (an answer has a byte budget), and the token then continues right after the last item sent,
/// whichever bound stopped the page.
pub fn page<Row, Item>(
    rows: Vec<Row>,
    limit: usize,
    render: impl FnOnce(&[Row]) -> Vec<Item>,
    next_token: impl FnOnce(&Row) -> Result<String, Error>,
) -> Result<Page<Item>, Error> {
    let items = render(&rows[..rows.len().min(limit)]);
    debug_assert!(items.len() <= limit.min(rows.len()));
    let more = rows.len() > items.len();
    let next_page_token = match items.len().checked_sub(1).and_then(|last| rows.get(last)) {
        Some(last) if more => next_token(last)?,
        _ => String::new(),
    };
    Ok(Page {
        items,
        next_page_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(row: &u32) -> Result<String, Error> {
        Ok(format!("after {row}"))
    }

    #[test]
    fn page_size_zero_is_the_largest_page_and_larger_sizes_are_capped() {
        assert_eq!(page_size(0).unwrap(), MAX_PAGE_SIZE);
        assert_eq!(page_size(7).unwrap(), 7);
        assert_eq!(page_size(1_000).unwrap(), MAX_PAGE_SIZE);
        assert!(matches!(page_size(-1), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn a_full_page_with_more_rows_continues_after_its_last_item() {
        let page = page(vec![1, 2, 3], 2, <[u32]>::to_vec, token).unwrap();
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next_page_token, "after 2");
    }

    #[test]
    fn the_last_page_has_no_token() {
        let page = page(vec![1, 2], 2, <[u32]>::to_vec, token).unwrap();
        assert_eq!(page.items, [1, 2]);
        assert!(page.next_page_token.is_empty());
    }

    #[test]
    fn a_page_the_front_door_cut_short_continues_after_the_last_item_sent() {
        let page = page(vec![1, 2, 3], 3, |rows| rows[..1].to_vec(), token).unwrap();
        assert_eq!(page.items, [1]);
        assert_eq!(page.next_page_token, "after 1");
    }

    #[test]
    fn a_token_for_another_tenant_is_invalid() {
        let sealer = TokenSealer::new(b"a test key").unwrap();
        let sealed = sealer.seal("watch-page", "tenant a", &7_u32).unwrap();
        let opened: Option<u32> = open_token(&sealer, "watch-page", "tenant a", &sealed).unwrap();
        assert_eq!(opened, Some(7));
        let refused = open_token::<_, u32>(&sealer, "watch-page", "tenant b", &sealed);
        assert!(matches!(refused, Err(Error::InvalidArgument(_))));
        assert_eq!(
            open_token::<_, u32>(&sealer, "watch-page", "a", "").unwrap(),
            None
        );
    }
}
