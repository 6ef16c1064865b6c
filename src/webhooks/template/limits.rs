//! What a template may cost, checked by loops over its characters before the JSONPath parser
//! sees an expression: the parser recurses once per nesting level and backtracks (its work
//! doubles with each nested filter), and evaluation visits every node again for each nested
//! filter over descendants (`..`), so both follow an expression's length and nesting depth.

use crate::error::excerpt;

/// Longest template, in characters; the same as `Watch.schema`'s limit, so that
/// PreviewWatchPayload, which takes a bare schema, is bounded like CreateWatch.
pub const MAX_TEMPLATE_CHARS: usize = 65_536;

/// Most `${...}` expressions in one template: each is evaluated at every event, and each can
/// copy the whole call into the body.
pub const MAX_EXPRESSIONS: usize = 64;

/// Longest expression, in bytes between `${` and `}`: the paths a payload needs are short,
/// and the length bounds how many filters, selectors and `||` terms one expression chains.
/// It also bounds the parser's recursion on its own (it overflowed at ~2,000 levels).
pub const MAX_EXPRESSION_BYTES: usize = 128;

/// Deepest nesting of `[`, `(` and `{` in one expression (outside string literals).
///
/// Parsing costs about 2^depth (the parser tries a nested filter as a comparison, then again
/// as an existence test), and nested filters over descendants multiply evaluation. With 4 and
/// [`MAX_EXPRESSION_BYTES`], the costliest expressions we could build (`tests.rs`,
/// `worst_expressions`: nested `..[?` filters with `||`/`&&` chains inside, `||` trees, wide
/// unions) parse in at most 0.9 ms and evaluate on the sample call in at most 0.5 ms (two wide
/// unions, 3,844 nodes; all others under 40 µs), measured with
/// `cargo test --lib template::tests::time_the_worst_expressions -- --ignored --nocapture`
/// (dev profile, dependencies at opt-level 1; a release build was ~30% faster). Depth 5
/// doubles the parse time, depth 12 took 18 ms, the depth 20 took 4.5 s.
pub const MAX_EXPRESSION_DEPTH: usize = 4;

/// Largest body a template may render (JSON text, in bytes): the receiver gets it at every
/// event and the delivery log keeps it.
pub const MAX_RENDERED_BYTES: usize = 256 * 1024;

/// The index of the `}` that closes an expression, skipping braces inside quotes or nested.
pub(super) fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0_usize;
    let mut scanner = Literals::default();
    for (index, character) in text.char_indices() {
        if scanner.inside(character) {
            continue;
        }
        match character {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(index),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Checks `expression` (the text between `${` and `}`) against the length and depth limits.
pub(super) fn check_expression(expression: &str) -> Result<(), String> {
    if expression.len() > MAX_EXPRESSION_BYTES {
        return Err(format!(
            "the expression ${{{}}} is longer than {MAX_EXPRESSION_BYTES} bytes",
            excerpt(expression)
        ));
    }
    if nesting_depth(expression) > MAX_EXPRESSION_DEPTH {
        return Err(format!(
            "the expression ${{{}}} nests brackets, parentheses or braces deeper than \
             {MAX_EXPRESSION_DEPTH} levels",
            excerpt(expression)
        ));
    }
    Ok(())
}

/// The deepest nesting of `[`, `(` and `{` in `expression`, outside string literals.
pub(super) fn nesting_depth(expression: &str) -> usize {
    let mut depth = 0_usize;
    let mut deepest = 0_usize;
    let mut scanner = Literals::default();
    for character in expression.chars() {
        if scanner.inside(character) {
            continue;
        }
        match character {
            '[' | '(' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ']' | ')' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Follows JSONPath string literals (`'...'`, `"..."`, `\` escaping the next character) as
/// the parser reads them, so brackets inside a literal are neither nesting nor closing.
#[derive(Default)]
struct Literals {
    quote: Option<char>,
    escaped: bool,
}

impl Literals {
    /// Whether `character` belongs to a string literal (its quotes included).
    fn inside(&mut self, character: char) -> bool {
        match self.quote {
            Some(open) => {
                if self.escaped {
                    self.escaped = false;
                } else if character == '\\' {
                    self.escaped = true;
                } else if character == open {
                    self.quote = None;
                }
                true
            }
            None if character == '\'' || character == '"' => {
                self.quote = Some(character);
                true
            }
            None => false,
        }
    }
}
