//! Phone numbers: kept as the client wrote them, plus their digits for formatting-blind search.

use crate::Error;

const MAX_DIGITS: usize = 32;

/// A phone number as sent, known to hold digits and common separators only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts digits with an optional leading `+` and the separators people write:
    /// spaces, `-`, `.`, `(`, `)` and `/`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if let Some(bad) = body
            .chars()
            .find(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '/')))
        {
            return Err(Error::invalid(
                field,
                format!("must be a phone number: unexpected character {bad:?}"),
            ));
        }
        let digits = digits_of(trimmed);
        if digits.is_empty() || digits.len() > MAX_DIGITS {
            return Err(Error::invalid(
                field,
                format!("must hold between 1 and {MAX_DIGITS} digits"),
            ));
        }
        Ok(PhoneNumber(trimmed.to_owned()))
    }

    /// Rebuilds a number that was validated before it was stored.
    pub fn from_stored(stored: String) -> Self {
        PhoneNumber(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The digits alone: `+33 6 12-34` gives `3361234`.
    pub fn digits(&self) -> String {
        digits_of(&self.0)
    }
}

/// The ASCII digits of `text`, in order.
pub fn digits_of(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_is_kept_and_digits_are_extracted() {
        let number = PhoneNumber::parse("n", " +33 6 12 34 56 78 ").unwrap();
        assert_eq!(number.as_str(), "+33 6 12 34 56 78");
        assert_eq!(number.digits(), "33612345678");
        assert_eq!(
            PhoneNumber::parse("n", "06-12-34-56-78").unwrap().digits(),
            "0612345678"
        );
    }

    #[test]
    fn letters_empty_and_oversized_numbers_are_refused() {
        assert!(PhoneNumber::parse("n", "call me").is_err());
        assert!(PhoneNumber::parse("n", "   ").is_err());
        assert!(PhoneNumber::parse("n", "+").is_err());
        assert!(PhoneNumber::parse("n", &"1".repeat(33)).is_err());
        assert!(PhoneNumber::parse("n", "12\u{0}3").is_err());
    }
}
