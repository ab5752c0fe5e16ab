//! Text a guest controls, made safe to show on one line of a log or a terminal: control
//! characters (newlines, escape sequences) are escaped as Rust writes them (`\n`,
//! `\u{1b}`), and the text is cut at a length, so one guest string can neither forge
//! another log line nor flood one.

/// `text` with control characters escaped, cut to at most `max` bytes (ending in `…` when
/// cut).
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let before = out.len();
        if c.is_control() {
            out.extend(c.escape_default());
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
    }

    #[test]
    fn long_text_is_cut_within_the_limit() {
        let s = one_line(&"é".repeat(100), 11);
        assert!(s.len() <= 11, "{s}");
        assert!(s.ends_with('…'), "{s}");
        assert_eq!(one_line("short", 5), "short");
    }
}
