//! Text a guest controls, made safe to show on one line of a log or a terminal: control
//! characters (newlines, escape sequences), backslashes and the invisible characters that
//! reorder or break a line (bidirectional overrides, line and paragraph separators) are
//! escaped as Rust writes them (`\n`, `\u{1b}`, `\\`, `\u{202e}`), and the text is cut at a
//! length, so one guest string can neither forge another log line nor flood one.

use std::borrow::Cow;

/// Whether `c` is escaped: it could start a new line or row, move the cursor, reorder what
/// follows it, or (a backslash) make plain text look like an escape.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` as it can be shown on one line of a terminal or a log: control characters,
/// backslashes, bidirectional overrides and line separators escaped as Rust writes them
/// (`\n`, `\u{1b}`, `\\`, `\u{202e}`). Names, modules, versions and exit reasons come from
/// guests; show them through this.
///
/// ```
/// assert_eq!(otter::escaped("evil\n\u{1b}[2J"), "evil\\n\\u{1b}[2J");
/// ```
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `value` as one line of JSON that shows on a terminal as it is written: besides what JSON
/// escapes itself (quotes, backslashes, C0 control characters), DEL, C1 control
/// characters (`\u{9b}` starts an escape sequence on some terminals), bidirectional
/// overrides and line separators are written as `\uXXXX`. The same value, read back.
///
/// ```
/// let shown = otter::json_line(&serde_json::json!({"a": "\u{9b}31m\u{202e}\u{7f}\n"}));
/// assert_eq!(shown, r#"{"a":"\u009b31m\u202e\u007f\n"}"#);
/// ```
pub fn json_line(value: &serde_json::Value) -> String {
    let text = value.to_string();
    // Outside strings JSON has no such characters, and inside them serde_json has escaped
    // the C0 ones and the backslash: what is left raw of them are these.
    let raw = |c: char| c != '\\' && c >= ' ' && unsafe_char(c);
    if !text.contains(raw) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if raw(c) {
            // All of them are in the Basic Multilingual Plane: one `\uXXXX` each.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` [`escaped`], cut to at most `max` bytes (ending in `…` when cut).
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let before = out.len();
        if unsafe_char(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(before);
            // Room for the ellipsis (3 bytes) within `max`.
            while out.len() + '…'.len_utf8() > max {
                out.pop();
            }
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("a\nb\u{1b}[2J\tc", 100), "a\\nb\\u{1b}[2J\\tc");
        assert_eq!(
            one_line("a\\n", 100),
            "a\\\\n",
            "a backslash cannot fake an escape"
        );
        assert_eq!(one_line("x\u{202e}y\u{2028}", 100), "x\\u{202e}y\\u{2028}");
    }

    #[test]
    fn long_text_is_cut_within_the_limit() {
        let s = one_line(&"é".repeat(100), 11);
        assert!(s.len() <= 11, "{s}");
        assert!(s.ends_with('…'), "{s}");
        assert_eq!(one_line("short", 5), "short");
    }

    #[test]
    fn escaped_leaves_plain_text_alone_and_escapes_c0_del_c1_and_backslashes() {
        use super::escaped;
        assert!(matches!(
            escaped("naïve ✓"),
            std::borrow::Cow::Borrowed("naïve ✓")
        ));
        assert_eq!(
            escaped("a\n\u{1b}[2J\t\u{7f}\u{9b}\\b"),
            r"a\n\u{1b}[2J\t\u{7f}\u{9b}\\b"
        );
    }
}
