//! The manifest's text before serde sees it: bytes that are not UTF-8, and the line and
//! field of the TOML parser's errors that come without them (a duplicate key, nesting
//! past the parser's limit), and the key a misspelt one was meant to be.

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

/// serde's message for an unknown key K, which lists every key of its table, as "unknown
/// field K; did you mean A?" when a key A is within two edits of K: the list is long (the
/// `[node]` table has nineteen keys) and a typo is the usual cause. `None` keeps serde's
/// message.
pub(super) fn misspelt_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let keys = rest.strip_prefix(", expected one of ")?;
    // Keys are short; a long unknown one is no typo (and bounds the work below).
    if unknown.len() > 64 {
        return None;
    }
    let (edits, key) = keys
        .split(", ")
        .map(|k| k.trim_matches('`'))
        .map(|k| (edits(unknown, k), k))
        .min_by_key(|(d, _)| *d)?;
    (edits <= 2).then(|| format!("unknown field `{unknown}`; did you mean `{key}`?"))
}

/// The Levenshtein distance between `a` and `b`, in characters, ASCII case ignored (TOML
/// keys are case-sensitive, and `Max_Timers` is still meant as `max_timers`).
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(!ca.eq_ignore_ascii_case(cb));
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
