//! The browser origins allowed to call the API (`CALLSD_CORS_ALLOWED_ORIGINS`), as operators
//! write them and as browsers send them. A setting of every front door that browsers reach, so
//! it lives with the settings, not in one of them.

use http::HeaderValue;

/// The browser origins allowed to call the API (`CALLSD_CORS_ALLOWED_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Exactly these origins, as a browser sends them (`https://app.example.com`); none if empty.
    Listed(Vec<HeaderValue>),
    /// Any origin (`*`).
    Any,
}

/// Parses a comma-separated list of origins (`scheme://host[:port]`), or `*`; empty is none.
pub fn parse_allowed_origins(text: &str) -> Result<AllowedOrigins, String> {
    let items: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items == ["*"] {
        return Ok(AllowedOrigins::Any);
    }
    items
        .into_iter()
        .map(parse_origin)
        .collect::<Result<_, _>>()
        .map(AllowedOrigins::Listed)
}

fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let explain = |problem: &str| {
        format!("{text:?} is not an origin like https://app.example.com or http://localhost:5173: {problem}")
    };
    if text == "*" {
        return Err(explain("\"*\" allows any origin and must stand alone"));
    }
    let url = url::Url::parse(text).map_err(|error| explain(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(explain("the scheme must be http or https"));
    }
    // A browser's Origin header has no path, not even "/": one written here would never match.
    if text.ends_with('/') || url.path() != "/" || url.query().is_some() || url.fragment().is_some()
    {
        return Err(explain("write it without a path or a trailing slash"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(explain("an origin has no user name or password"));
    }
    HeaderValue::from_str(&url.origin().ascii_serialization())
        .map_err(|error| explain(&error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origin_is_allowed_by_default() {
        assert_eq!(
            parse_allowed_origins(""),
            Ok(AllowedOrigins::Listed(vec![]))
        );
    }

    #[test]
    fn origins_are_read_as_browsers_send_them() {
        assert_eq!(
            parse_allowed_origins(" https://App.Example.com , http://localhost:5173"),
            Ok(AllowedOrigins::Listed(vec![
                HeaderValue::from_static("https://app.example.com"),
                HeaderValue::from_static("http://localhost:5173"),
            ]))
        );
        assert_eq!(parse_allowed_origins("*"), Ok(AllowedOrigins::Any));
    }

    #[test]
    fn an_origin_with_a_path_or_another_scheme_is_refused_with_the_reason() {
        let error = parse_allowed_origins("https://app.example.com/").unwrap_err();
        assert!(error.contains("trailing slash"), "{error}");
        assert!(parse_allowed_origins("https://app.example.com/ui").is_err());
        assert!(parse_allowed_origins("ftp://app.example.com").is_err());
        assert!(parse_allowed_origins("app.example.com").is_err());
        assert!(parse_allowed_origins("*,https://app.example.com").is_err());
    }
}
