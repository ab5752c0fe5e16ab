//! A string in `Debug` output without `Debug`'s escaping.
//!
//! `Debug` for `str` escapes each character, and its test of which characters print links
//! core's Unicode tables (about 2.6 KiB) into the data of every guest that formats a string
//! with `{:?}`: a resident page of each live process's linear memory when it tips the data
//! over a page. The error types a server `expect`s write their strings with [`Quoted`], so
//! `call(..).expect("..")` costs no page; a string with quotes or control characters then
//! shows them as they are.

use std::fmt;

/// `Debug` as `"text"`, the characters as they are.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        f.write_str(self.0)?;
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_string_debugs_as_it_is_between_quotes() {
        assert_eq!(
            format!("{:?}", Quoted("no \"escape\"\n")),
            "\"no \"escape\"\n\""
        );
        let nested = format!("{:?}", Some(Quoted("x")));
        assert_eq!(nested, "Some(\"x\")");
        assert_eq!(format!("{:#?}", (Quoted("a"),)), "(\n    \"a\",\n)");
    }
}
