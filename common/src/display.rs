//! Showing a term to a person, in bounded time and space: JSON-like text (byte strings as
//! `h'0a0b'`, tags as `tag(item)`, as in RFC 8949's diagnostic notation), cut at a length
//! with `…`. Exit reasons and `via` keys are shown this way in logs and errors, often inside a
//! host import, so this never recurses and never allocates more than its limit.

use std::fmt::{self, Write};

use crate::walk::{Halt, Token, Visit, walk};

/// How many characters of a term a log line or error shows.
pub const SHOWN: usize = 200;

/// A term shown as text of at most `limit` characters plus `…`; what follows a malformed or
/// too deeply nested part is cut the same way, and a term that is malformed from its first
/// byte shows as `<malformed term>`.
pub struct Shown<'a> {
    term: &'a [u8],
    limit: usize,
}

/// `term` shown in at most [`SHOWN`] characters.
pub fn shown(term: &[u8]) -> Shown<'_> {
    Shown { term, limit: SHOWN }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Text {
            out: String::new(),
            limit: self.limit,
            open: Vec::new(),
        };
        match walk(self.term, &mut text) {
            Ok(()) => f.write_str(&text.out),
            Err(Halt::Stopped(Full)) => {
                f.write_str(&text.out)?;
                f.write_str("…")
            }
            // Too deep (or broken) past this point: show what came before.
            Err(Halt::Malformed(_)) if !text.out.is_empty() => {
                f.write_str(&text.out)?;
                f.write_str("…")
            }
            Err(Halt::Malformed(_)) => f.write_str("<malformed term>"),
        }
    }
}

/// The output has reached its limit.
struct Full;

/// How far an open container has got, for separators.
struct Frame {
    items: u64,
    map: bool,
    tag: bool,
}

struct Text {
    out: String,
    limit: usize,
    open: Vec<Frame>,
}

impl Text {
    fn push(&mut self, s: &str) -> Result<(), Full> {
        let room = self
            .limit
            .saturating_sub(self.out.chars().count().min(self.limit));
        if s.chars().count() <= room {
            self.out.push_str(s);
            Ok(())
        } else {
            self.out.extend(s.chars().take(room));
            Err(Full)
        }
    }

    /// The separator before the next item of the innermost container.
    fn separate(&mut self) -> Result<(), Full> {
        let Some(top) = self.open.last_mut() else {
            return Ok(());
        };
        let sep = match (top.tag, top.map, top.items) {
            (true, ..) | (false, _, 0) => "",
            (false, true, n) if n % 2 == 1 => ":",
            _ => ",",
        };
        top.items += 1;
        self.push(sep)
    }
}

impl<'a> Visit<'a> for Text {
    type Stop = Full;

    fn scalar(&mut self, token: Token<'a>) -> Result<(), Full> {
        self.separate()?;
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = match token {
            Token::Uint(n) => write!(s, "{n}"),
            Token::Nint(n) => write!(s, "{}", -1 - i128::from(n)),
            Token::Bytes(b) => {
                s.push_str("h'");
                for byte in b.iter().take(self.limit) {
                    let _ = write!(s, "{byte:02x}");
                }
                if b.len() > self.limit {
                    s.push('…');
                }
                write!(s, "'")
            }
            Token::Text(t) => {
                let t = String::from_utf8_lossy(&t[..t.len().min(4 * self.limit)]);
                json_string(&mut s, &t);
                Ok(())
            }
            Token::Simple(20) => write!(s, "false"),
            Token::Simple(21) => write!(s, "true"),
            Token::Simple(22) => write!(s, "null"),
            Token::Simple(23) => write!(s, "undefined"),
            Token::Simple(v) => write!(s, "simple({v})"),
            Token::Float(x) => write!(s, "{x:?}"),
            Token::Array(_) | Token::Map(_) | Token::Tag(_) => unreachable!("not a scalar"),
        };
        self.push(&s)
    }

    fn open(&mut self, token: Token<'a>) -> Result<(), Full> {
        self.separate()?;
        let (open, map, tag) = match token {
            Token::Array(_) => ("[".to_owned(), false, false),
            Token::Map(_) => ("{".to_owned(), true, false),
            Token::Tag(t) => (format!("{t}("), false, true),
            _ => unreachable!("not a container"),
        };
        self.open.push(Frame { items: 0, map, tag });
        self.push(&open)
    }

    fn close(&mut self) -> Result<(), Full> {
        let frame = self.open.pop().expect("walk closes only what it opened");
        self.push(match (frame.tag, frame.map) {
            (true, _) => ")",
            (false, true) => "}",
            (false, false) => "]",
        })
    }
}

/// `text` as a JSON string, with JSON's escapes: quotes, backslashes and every control
/// character (the escapes `serde_json` writes).
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::Shown;
    use crate::encode;

    fn show(json: &str, limit: usize) -> String {
        let term = encode(&serde_json::from_str::<serde_json::Value>(json).unwrap()).unwrap();
        Shown { term: &term, limit }.to_string()
    }

    #[test]
    fn terms_show_as_compact_json() {
        assert_eq!(
            show(r#"{"a":[1,-2,1.5,"x\n",null,true]}"#, 100),
            r#"{"a":[1,-2,1.5,"x\n",null,true]}"#
        );
    }

    #[test]
    fn long_and_deep_terms_are_cut() {
        assert_eq!(show(r#"[1,2,3,4,5,6]"#, 6), "[1,2,3…");
        let mut deep = vec![0x81u8; 100_000];
        deep.push(1);
        let cut = |limit| Shown { term: &deep, limit }.to_string();
        assert_eq!(cut(10), format!("{}…", "[".repeat(10)));
        assert_eq!(cut(1000), format!("{}…", "[".repeat(crate::MAX_TERM_DEPTH)));
        let broken = Shown {
            term: &[0xff],
            limit: 10,
        };
        assert_eq!(broken.to_string(), "<malformed term>");
    }

    #[test]
    fn text_is_escaped_as_json_escapes_it() {
        let text = "q\"b\\n\nr\rt\tb\u{8}f\u{c}z\u{0}e\u{1b}d\u{7f}é";
        let want = serde_json::Value::String(text.into()).to_string();
        assert_eq!(show(&want, 100), want);
    }

    #[test]
    fn byte_strings_and_tags_use_diagnostic_notation() {
        let term = [0xc1, 0x42, 0x0a, 0xff];
        assert_eq!(
            Shown {
                term: &term,
                limit: 50
            }
            .to_string(),
            "1(h'0aff')"
        );
    }
}
