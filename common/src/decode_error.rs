//! The error every `Deserialize` implementation sees while a term decodes: serde's texts
//! (what was found, what was expected, the variant or field name), without serde's own
//! description of the value found, which formats a float with core's float printer and a
//! string with `Debug`'s escaping. Those two pull about 4 KiB of tables into every guest's
//! data, a resident page of each live process's linear memory; here a float is named by its
//! kind and a string is shown as it is, cut at [`SHOWN_STRING`] bytes, as is an unknown
//! variant's or field's name (a sender chooses it, as long as the message).
//!
//! It is the error type of the term decoder itself ([`crate::cbor_de`]), which says where
//! in the term a CBOR item was not what was asked for; serde's own errors (a missing field,
//! an unknown variant) do not know where they are, and [`crate::decode`] adds where the
//! reading stopped.

use std::fmt::{self, Display};

use serde::de::{self, Expected, Unexpected};

/// How many bytes of an unexpected string an error shows: a message comes from any process,
/// and its strings may be as long as the message.
pub(crate) const SHOWN_STRING: usize = 64;

/// Why a term does not decode as the type asked for.
pub(crate) struct Failure {
    /// What did not decode, in serde's words.
    pub(crate) message: String,
    /// Whether the message already says where (the decoder's own errors do).
    pub(crate) positioned: bool,
}

impl Failure {
    fn new(message: String) -> Self {
        Failure {
            message,
            positioned: false,
        }
    }

    /// A failure the decoder found at byte `at` of the term: "`what` at position `at`",
    /// then ": `detail`" unless it is empty (the CBOR library's words, which tests and
    /// users have seen: "unexpected type f64 at position 1: expected u32").
    pub(crate) fn at(what: fmt::Arguments<'_>, at: usize, detail: &str) -> Self {
        let message = if detail.is_empty() {
            format!("{what} at position {at}")
        } else {
            format!("{what} at position {at}: {detail}")
        };
        Failure {
            message,
            positioned: true,
        }
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// By hand: a derived `Debug` would escape the message, linking the tables this type avoids.
impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl de::Error for Failure {
    fn custom<T: Display>(msg: T) -> Self {
        Failure::new(format!("{msg}"))
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Failure::new(format!("invalid type: {}, expected {exp}", Found(unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Failure::new(format!("invalid value: {}, expected {exp}", Found(unexp)))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Failure::new(format!(
            "unknown variant {}, {}",
            Cut(variant),
            Names(expected, "variants")
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Failure::new(format!(
            "unknown field {}, {}",
            Cut(field),
            Names(expected, "fields")
        ))
    }
}

/// A string from the term between backquotes, cut at [`SHOWN_STRING`] bytes (on a character
/// boundary) with `…` after, its control characters escaped (a sender chooses it).
struct Cut<'a>(&'a str);

impl Display for Cut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut end = s.len().min(SHOWN_STRING);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        f.write_str("`")?;
        crate::quoted::write_plain(f, s.get(..end).unwrap_or_default())?;
        f.write_str(if end < s.len() { "`…" } else { "`" })
    }
}

/// The names a type knows, as serde lists them: "expected `a` or `b`", "expected one of
/// `a`, `b`, `c`", or "there are no variants".
struct Names(&'static [&'static str], &'static str);

impl Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => write!(f, "there are no {}", self.1),
            [one] => write!(f, "expected `{one}`"),
            [a, b] => write!(f, "expected `{a}` or `{b}`"),
            names => {
                f.write_str("expected one of ")?;
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{name}`")?;
                }
                Ok(())
            }
        }
    }
}

/// serde's description of a value found, less the float's digits and the string's escapes.
struct Found<'a>(Unexpected<'a>);

impl Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Unexpected::Bool(b) => write!(f, "boolean `{b}`"),
            Unexpected::Unsigned(i) => write!(f, "integer `{i}`"),
            Unexpected::Signed(i) => write!(f, "integer `{i}`"),
            Unexpected::Float(_) => f.write_str("floating point"),
            Unexpected::Char(c) => write!(f, "character {}", Cut(c.encode_utf8(&mut [0; 4]))),
            Unexpected::Str(s) => write!(f, "string {}", Cut(s)),
            Unexpected::Bytes(_) => f.write_str("byte array"),
            Unexpected::Unit => f.write_str("unit value"),
            Unexpected::Option => f.write_str("Option value"),
            Unexpected::NewtypeStruct => f.write_str("newtype struct"),
            Unexpected::Seq => f.write_str("sequence"),
            Unexpected::Map => f.write_str("map"),
            Unexpected::Enum => f.write_str("enum"),
            Unexpected::UnitVariant => f.write_str("unit variant"),
            Unexpected::NewtypeVariant => f.write_str("newtype variant"),
            Unexpected::TupleVariant => f.write_str("tuple variant"),
            Unexpected::StructVariant => f.write_str("struct variant"),
            Unexpected::Other(other) => f.write_str(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::de::Error;

    use super::*;

    #[test]
    fn an_unexpected_string_is_shown_as_it_is_up_to_a_bound() {
        let short = Failure::invalid_value(Unexpected::Str("a \"b\""), &"a name");
        assert_eq!(
            short.to_string(),
            "invalid value: string `a \"b\"`, expected a name"
        );
        // Control characters are escaped: a sender chooses the string, a terminal shows it.
        let control = Failure::invalid_value(Unexpected::Str("a\n\u{1b}[2J"), &"a name");
        assert_eq!(
            control.to_string(),
            "invalid value: string `a\\u{a}\\u{1b}[2J`, expected a name"
        );
        let c = Failure::invalid_type(Unexpected::Char('\u{7}'), &"a digit");
        assert_eq!(
            c.to_string(),
            "invalid type: character `\\u{7}`, expected a digit"
        );
        // Cut on a character boundary: `é` is two bytes, the 64th and 65th.
        let long = format!("{}é{}", "x".repeat(SHOWN_STRING - 1), "y".repeat(1000));
        let cut = Failure::invalid_value(Unexpected::Str(&long), &"a name");
        assert_eq!(
            cut.to_string(),
            format!(
                "invalid value: string `{}`…, expected a name",
                "x".repeat(SHOWN_STRING - 1)
            )
        );
    }

    #[test]
    fn an_unknown_variant_or_field_is_named_up_to_a_bound_with_the_known_ones() {
        let e = Failure::unknown_variant("Dec", &["Inc", "Add", "Get"]);
        assert_eq!(
            e.to_string(),
            "unknown variant `Dec`, expected one of `Inc`, `Add`, `Get`"
        );
        let e = Failure::unknown_field("x", &["a", "b"]);
        assert_eq!(e.to_string(), "unknown field `x`, expected `a` or `b`");
        assert_eq!(
            Failure::unknown_variant("x", &["a"]).to_string(),
            "unknown variant `x`, expected `a`"
        );
        assert_eq!(
            Failure::unknown_variant("x", &[]).to_string(),
            "unknown variant `x`, there are no variants"
        );
        // A sender chooses the name: a megabyte of it is not a megabyte of error.
        let e = Failure::unknown_variant(&"v".repeat(1 << 20), &["a"]);
        assert_eq!(
            e.to_string(),
            format!(
                "unknown variant `{}`…, expected `a`",
                "v".repeat(SHOWN_STRING)
            )
        );
    }

    #[test]
    fn an_unexpected_float_is_named_by_its_kind() {
        let e = Failure::invalid_type(Unexpected::Float(2.5), &"a string");
        assert_eq!(
            e.to_string(),
            "invalid type: floating point, expected a string"
        );
    }
}
