//! A string in `Debug` output without `Debug`'s escaping.
//!
//! `Debug` for `str` escapes each character, and its test of which characters print links
//! core's Unicode tables (about 2.6 KiB) into the data of every guest that formats a string
//! with `{:?}`: a resident page of each live process's linear memory when it tips the data
//! over a page. The error types a server `expect`s write their strings with [`Quoted`], so
//! `call(..).expect("..")` costs no page. Control characters (a range test, no table) are
//! still written as `\u{..}`, so a peer's string cannot drive a terminal; a string with
//! quotes, or other characters `Debug` would escape, shows them as they are.

use std::fmt;

/// `Debug` as `"text"`, the characters as they are but for control characters.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        write_plain(f, self.0)?;
        f.write_str("\"")
    }
}

/// Write `text` as it is, but for control characters, written `\u{1b}` as `Debug` would.
pub(crate) fn write_plain(f: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        // The C0 and C1 controls, tested by range (`char::is_control` may bring a table).
        let code = u32::from(c);
        if code < 0x20 || (0x7f..0xa0).contains(&code) {
            f.write_str("\\u{")?;
            if code > 0xf {
                f.write_char(HEX[(code >> 4) as usize])?;
            }
            f.write_char(HEX[(code & 0xf) as usize])?;
            f.write_str("}")?;
        } else {
            // A character at a time: slicing `text` would link the slicing panic, whose
            // message formats a character with `Debug`'s tables.
            f.write_char(c)?;
        }
    }
    Ok(())
}

/// Hexadecimal digits, written by hand: formatting with `{:x}` costs a few instructions more
/// and nothing here needs it.
const HEX: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_string_debugs_as_it_is_between_quotes() {
        assert_eq!(
            format!("{:?}", Quoted("no \"escape\"")),
            "\"no \"escape\"\""
        );
        let nested = format!("{:?}", Some(Quoted("x")));
        assert_eq!(nested, "Some(\"x\")");
        assert_eq!(format!("{:#?}", (Quoted("a"),)), "(\n    \"a\",\n)");
    }

    #[test]
    fn control_characters_are_escaped_so_a_peer_cannot_drive_a_terminal() {
        assert_eq!(
            format!("{:?}", Quoted("a\nb\u{1b}[2J\u{85}é")),
            "\"a\\u{a}b\\u{1b}[2J\\u{85}é\""
        );
    }
}
