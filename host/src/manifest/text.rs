//! The manifest's text before serde sees it: bytes that are not UTF-8, and the line and
//! field of the TOML parser's errors that come without them (a duplicate key, nesting
//! past the parser's limit); and serde's list of the fields it expected, made a suggestion.

use std::ops::Range;

/// Where the first byte that is not UTF-8 is: (1-based line, 1-based column in
/// characters, 0-based byte offset), or `None` if all of `bytes` is UTF-8.
pub(super) fn first_invalid_byte(bytes: &[u8]) -> Option<(usize, usize, usize)> {
    let offset = std::str::from_utf8(bytes).err()?.valid_up_to();
    // Everything before `offset` is UTF-8, so this cannot fail.
    let valid = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    let line = valid.matches('\n').count() + 1;
    let column = valid[line_start..].chars().count() + 1;
    Some((line, column, offset))
}

/// A bare key no manifest uses, put in place of a duplicate key to find where it is.
const MARKER: &str = "__otter_duplicate_key__";

/// The field path (`children[1].name`, `modules.echo`) of the duplicate key whose second
/// occurrence is at `span`: the key is renamed to a marker, the text parsed again, and the
/// marker looked for. `None` if the text still does not parse (say, a key given thrice).
pub(super) fn duplicate_key_field(text: &str, span: &Range<usize>) -> Option<String> {
    let original = text.get(span.clone())?;
    let renamed = format!("{}{MARKER}{}", &text[..span.start], &text[span.end..]);
    let table: toml::Table = toml::from_str(&renamed).ok()?;
    let key = original.trim().trim_matches(['"', '\'']);
    // Iterative: the parser bounds nesting, but host code walks no tree by recursion.
    let root = toml::Value::Table(table);
    let mut stack: Vec<(String, &toml::Value)> = vec![(String::new(), &root)];
    while let Some((at, value)) = stack.pop() {
        match value {
            toml::Value::Table(t) => {
                let join = |k: &str| {
                    if at.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{at}.{k}")
                    }
                };
                if t.contains_key(MARKER) {
                    return Some(join(key));
                }
                stack.extend(t.iter().map(|(k, v)| (join(k), v)));
            }
            toml::Value::Array(items) => {
                stack.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (format!("{at}[{i}]"), v)),
                );
            }
            _ => {}
        }
    }
    None
}

/// The first line with a dotted key or table header of at least `segments` parts (the
/// TOML parser refuses those without saying where). Quotes are honoured; a key inside an
/// inline table is not looked at.
pub(super) fn deep_key_line(text: &str, segments: usize) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let key = line.trim_start_matches('[');
            let mut parts = 1;
            let mut quote = None;
            for c in key.chars() {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '"' | '\'') => quote = Some(c),
                    (None, '.') => parts += 1,
                    (None, '=' | ']' | '#') => break,
                    (None, _) => {}
                }
            }
            parts >= segments
        })
        .map(|i| i + 1)
}

/// Longest unknown key an error repeats.
const MAX_KEY_SHOWN: usize = 64;

/// serde's `unknown field `k`, expected one of `a`, `b`, …` as one short line: the key, and
/// the known one it is most likely a typo of, if any (the list grows with every key).
pub(super) fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest
        .rfind("`, expected")
        .or_else(|| rest.rfind("`, there are no fields"))?;
    let (key, expected) = (&rest[..end], &rest[end..]);
    let within = |known: &str| (known.len() / 3).max(1);
    let closest = expected
        .split('`')
        .skip(2)
        .step_by(2)
        // The distance is at least the difference in length: a long key costs nothing.
        .filter(|known| key.len().abs_diff(known.len()) <= within(known))
        .map(|known| (strsim::damerau_levenshtein(key, known), known))
        .filter(|&(distance, known)| distance <= within(known))
        .min();
    let key = crate::guest_text::one_line(key, MAX_KEY_SHOWN);
    Some(match closest {
        Some((_, known)) => format!("unknown field `{key}` (did you mean `{known}`?)"),
        None => format!("unknown field `{key}` (see the manifest reference for the fields)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_field_is_named_with_the_known_one_it_is_likely_a_typo_of() {
        let serde =
            "unknown field `max_timer`, expected one of `name`, `max_timers`, `memory_limit`";
        assert_eq!(
            unknown_field(serde).as_deref(),
            Some("unknown field `max_timer` (did you mean `max_timers`?)")
        );
        let far = "unknown field `colour`, expected `name` or `module`";
        assert_eq!(
            unknown_field(far).as_deref(),
            Some("unknown field `colour` (see the manifest reference for the fields)")
        );
        let one = "unknown field `nmae`, expected `name`";
        assert!(unknown_field(one).unwrap().contains("did you mean `name`"));
        let none = "unknown field `x`, there are no fields";
        assert!(unknown_field(none).is_some());
        let long = format!("unknown field `{}`, expected `a`", "k".repeat(10_000));
        assert!(
            unknown_field(&long).unwrap().len() < 200,
            "a long key is cut"
        );
        assert_eq!(unknown_field("invalid type: string"), None);
    }
}
