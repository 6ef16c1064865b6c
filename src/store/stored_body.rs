//! The delivery log keeps at most [`MAX_STORED_BODY_BYTES`] of each request and response body,
//! cut on a character boundary and marked `…[truncated N bytes]`, so one watch with large
//! bodies cannot grow the log (and every ListDeliveries page) without bound.

/// Bytes of a body the log keeps: enough to read an event or an error page, a quarter of the
/// largest body a template may render.
pub const MAX_STORED_BODY_BYTES: usize = 64 * 1024;

const MARKER_START: &str = "…[truncated ";
const MARKER_END: &str = " bytes]";

/// `body` as the log keeps it: whole when it fits, else its start and the marker saying how
/// many bytes were cut.
pub fn cut(body: &str) -> String {
    if body.len() <= MAX_STORED_BODY_BYTES {
        return body.to_owned();
    }
    let mut end = MAX_STORED_BODY_BYTES;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}{MARKER_START}{}{MARKER_END}",
        &body[..end],
        body.len() - end
    )
}

/// Whether the log's copy of a request body was cut. A JSON text cannot end like the marker,
/// so a request body (always JSON) that does was cut by [`cut`].
pub fn was_cut(stored: &str) -> bool {
    stored
        .strip_suffix(MARKER_END)
        .and_then(|rest| rest.rsplit_once(MARKER_START))
        .is_some_and(|(_, count)| !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_within_the_limit_is_kept_whole() {
        let body = "x".repeat(MAX_STORED_BODY_BYTES);
        assert_eq!(cut(&body), body);
        assert!(!was_cut(&body));
        assert!(!was_cut(r#"{"a": [1, 2]}"#));
    }

    #[test]
    fn a_larger_body_is_cut_on_a_character_boundary_and_says_how_much() {
        // 3-byte characters: the limit falls inside one.
        let body = "€".repeat(MAX_STORED_BODY_BYTES / 3 + 100);
        let stored = cut(&body);
        let kept = MAX_STORED_BODY_BYTES / 3 * 3;
        assert!(stored.starts_with(&body[..kept]));
        assert!(stored.ends_with(&format!("…[truncated {} bytes]", body.len() - kept)));
        assert!(stored.len() < MAX_STORED_BODY_BYTES + 32);
        assert!(was_cut(&stored));
    }
}
