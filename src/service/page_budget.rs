//! Every list answer stops at a byte budget as well as at its page size: a page of large items
//! (deliveries keep up to 64 KiB of each body, calls up to a few KiB) must stay small enough for
//! clients to receive (gRPC's default limit is 4 MiB) and for the server to build without a
//! spike of memory. The front door measures items in its own encoding; the rule is here.

/// The most a page's items may take, encoded, beyond its first item.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// How many items, from the start, go in one page, given each one's encoded size: the first
/// always (so paging always moves on), then each next one while the total stays within
/// [`MAX_PAGE_BYTES`].
pub fn items_that_fit(encoded_sizes: impl IntoIterator<Item = usize>) -> usize {
    let mut total = 0_usize;
    let mut count = 0;
    for size in encoded_sizes {
        total = total.saturating_add(size);
        if count > 0 && total > MAX_PAGE_BYTES {
            break;
        }
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stops_before_the_item_that_would_pass_the_budget() {
        assert_eq!(items_that_fit([300 * 1024; 10]), 3);
        assert_eq!(items_that_fit([10; 10]), 10);
    }

    #[test]
    fn the_first_item_is_always_sent_whatever_its_size() {
        assert_eq!(items_that_fit([2 * MAX_PAGE_BYTES, 1]), 1);
        assert_eq!(items_that_fit([usize::MAX, usize::MAX]), 1);
        assert_eq!(items_that_fit([]), 0);
    }
}
