//! Free-text fields: bounded length, no control characters (PostgreSQL rejects NUL bytes).

use crate::Error;

/// Returns `value` when it is at most `max_chars` long and holds no control characters.
pub fn checked_text(field: &str, value: &str, max_chars: usize) -> Result<String, Error> {
    if value.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}
