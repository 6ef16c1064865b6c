//! List answers stop at a byte budget as well as at their page size: a page of large items
//! (deliveries keep up to 64 KiB of each body) must stay small enough for clients to receive
//! and for the server to build without a spike of memory.

use prost::Message;

/// The most a page's repeated field may take, encoded, beyond its first item.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// How many of `items`, from the start, go in one page: the first always (so paging always
/// moves on), then each next one while the encoded total stays within [`MAX_PAGE_BYTES`].
pub fn items_that_fit<T: Message>(items: &[T]) -> usize {
    let mut total = 0_usize;
    for (count, item) in items.iter().enumerate() {
        // As a repeated message field: key, length and the message (field numbers < 16).
        total += prost::encoding::message::encoded_len(1, item);
        if count > 0 && total > MAX_PAGE_BYTES {
            return count;
        }
    }
    items.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(bytes: usize) -> prost_types::Value {
        prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue("x".repeat(bytes))),
        }
    }

    #[test]
    fn a_page_stops_before_the_item_that_would_pass_the_budget() {
        let items: Vec<_> = (0..10).map(|_| item(300 * 1024)).collect();
        assert_eq!(items_that_fit(&items), 3);
        let small: Vec<_> = (0..10).map(|_| item(10)).collect();
        assert_eq!(items_that_fit(&small), 10);
    }

    #[test]
    fn the_first_item_is_always_sent_whatever_its_size() {
        let items = vec![item(2 * MAX_PAGE_BYTES), item(1)];
        assert_eq!(items_that_fit(&items), 1);
        assert_eq!(items_that_fit::<prost_types::Value>(&[]), 0);
    }
}
