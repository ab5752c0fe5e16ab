//! The serde deserializer terms decode through: CBOR as `minicbor_serde`'s serializer writes
//! it (see [`crate::encode`]), read with the walker's tokenizer ([`crate::walk`]) and failing
//! in this crate's error type ([`Failure`]).
//!
//! It reads what `minicbor_serde`'s deserializer read, item for item, so a term decodes as
//! it did; its own code rather than that library's so that the library's decode errors,
//! whose `Display` writes every kind four ways (a kilobyte of every guest's data), are not
//! linked into guests. Where it differs on purpose:
//! - a unit (`()`, a unit struct) reads from `null` as well as from `[]` (the codec writes
//!   units as `null`);
//! - an item skipped (an unknown field's value) must be well formed: the library skipped a
//!   stray break byte as if it were an item;
//! - an error always says where it is, and a few of its texts are shorter (an overflow names
//!   the type asked for, a tuple of the wrong length says which length it wanted).
//!
//! The decoder recurses as deeply as the term nests, which [`crate::decode`] bounds first,
//! and at most [`MAX_NESTING`] deep whatever the term.

use serde::de::{self, Unexpected, Visitor};

use crate::decode_error::Failure;
use crate::term::TermError;
use crate::walk::{Arg, BREAK, Reader};

use access::Items;
use errors::{Length, TypeName, end_of_input, invalid_utf8, located, nested_too_deep, overflow};

/// How many arrays, maps and enums the decoder may be inside at once: twice the nesting the
/// walk allows, so that no term the walk accepts is refused for it. It counts what the walk
/// cannot: a variant given by its name alone reads the next item as its value, so a value
/// of a recursive type (`enum E { Neg(Box<E>), .. }`) can recurse once per item of a flat
/// array, a level of the guest's stack each.
const MAX_NESTING: usize = 2 * crate::term::MAX_TERM_DEPTH;

/// Decodes one serde value from the front of a term.
pub(crate) struct Deserializer<'de> {
    reader: Reader<'de>,
    /// Arrays, maps and enums being read (at most [`MAX_NESTING`]).
    depth: usize,
}

/// An item's first byte and where it was.
#[derive(Clone, Copy)]
struct Head {
    at: usize,
    initial: u8,
}

impl Head {
    fn major(self) -> u8 {
        self.initial >> 5
    }

    fn info(self) -> u8 {
        self.initial & 0x1f
    }
}

impl<'de> Deserializer<'de> {
    /// A deserializer reading `term` from its start.
    pub(crate) fn new(term: &'de [u8]) -> Self {
        Deserializer {
            reader: Reader {
                bytes: term,
                pos: 0,
            },
            depth: 0,
        }
    }

    /// Run `read` one level deeper, refused past [`MAX_NESTING`].
    fn nested<R>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        if self.depth >= MAX_NESTING {
            return Err(nested_too_deep(self.reader.pos, MAX_NESTING));
        }
        self.depth += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    /// Where the reading is: after the item, once it decoded.
    pub(crate) fn position(&self) -> usize {
        self.reader.pos
    }

    /// The next byte, not consumed.
    fn current(&self) -> Result<u8, Failure> {
        self.reader
            .peek()
            .ok_or_else(|| end_of_input(self.reader.pos))
    }

    /// Run one of the tokenizer's reads; its error is placed at `at`, the item's start.
    fn read<T>(
        &mut self,
        at: usize,
        read: impl FnOnce(&mut Reader<'de>) -> Result<T, TermError>,
    ) -> Result<T, Failure> {
        read(&mut self.reader).map_err(|e| located(e, at))
    }

    /// The next item's first byte, consumed.
    fn head(&mut self) -> Result<Head, Failure> {
        let at = self.reader.pos;
        let initial = self.read(at, Reader::byte)?;
        Ok(Head { at, initial })
    }

    /// The head's argument, which must be a number.
    fn argument(&mut self, head: Head) -> Result<u64, Failure> {
        self.read(head.at, |r| r.definite(head.info()))
    }

    /// The head's argument: a length, or `None` for an indefinite item.
    fn length(&mut self, head: Head) -> Result<Option<u64>, Failure> {
        self.read(head.at, |r| r.arg(head.info()))
            .map(|arg| match arg {
                Arg::Value(n) => Some(n),
                Arg::Indefinite => None,
            })
    }

    /// "unexpected type … at position …: `expected`", the type named as the CBOR library
    /// names it.
    #[cold]
    fn mismatch(&self, head: Head, expected: &str) -> Failure {
        let next = self.reader.bytes.get(head.at + 1).copied();
        Failure::at(
            format_args!("unexpected type {}", TypeName(head.initial, next)),
            head.at,
            expected,
        )
    }

    /// An integer of major type 0, or also 1 if `signed`, converted to `T` (named `name`).
    fn integer<T: TryFrom<i128>>(&mut self, signed: bool, name: &str) -> Result<T, Failure> {
        let head = self.head()?;
        let value = match head.major() {
            0 => i128::from(self.argument(head)?),
            1 if signed => -1 - i128::from(self.argument(head)?),
            _ => return Err(self.mismatch(head, name)),
        };
        T::try_from(value).map_err(|_| overflow(value, head.at, name))
    }

    /// The value of a bignum whose tag (`head`) is read: its definite byte string, big-endian,
    /// at most 16 bytes after leading zeros.
    fn bignum(&mut self, head: Head) -> Result<u128, Failure> {
        let bytes = self.bytes()?;
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let digits = bytes.get(start..).unwrap_or_default();
        if digits.len() > 16 {
            return Err(Failure::at(
                format_args!("bignum exceeds 128 bits"),
                head.at,
                "",
            ));
        }
        Ok(digits.iter().fold(0u128, |n, &b| n << 8 | u128::from(b)))
    }

    /// A definite-length byte string.
    fn bytes(&mut self) -> Result<&'de [u8], Failure> {
        let head = self.head()?;
        if head.major() != 2 || head.info() == 31 {
            return Err(self.mismatch(head, "expected bytes (definite length)"));
        }
        let n = self.argument(head)?;
        self.read(head.at, |r| r.take(n))
    }

    /// A definite-length text string.
    fn text(&mut self) -> Result<&'de str, Failure> {
        let head = self.head()?;
        if head.major() != 3 || head.info() == 31 {
            return Err(self.mismatch(head, "expected text (definite length)"));
        }
        let n = self.argument(head)?;
        let bytes = self.read(head.at, |r| r.take(n))?;
        // Most texts a server decodes are short ASCII names (variants, fields, keys): checked
        // inline, without the call into `from_utf8`.
        if bytes.is_ascii() {
            // SAFETY: ASCII is UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        std::str::from_utf8(bytes).map_err(|_| invalid_utf8(head.at))
    }

    /// A string of major type 2 or 3 whose head is read, its chunks joined; a text's chunks
    /// are each checked for UTF-8.
    fn chunks(&mut self, head: Head) -> Result<Vec<u8>, Failure> {
        let text = head.major() == 3;
        let bytes = self.read(head.at, |r| {
            r.string(head.major(), head.info(), |chunk| {
                if text && std::str::from_utf8(chunk).is_err() {
                    return Err(TermError("invalid utf-8".into()));
                }
                Ok(())
            })
        })?;
        Ok(bytes.into_owned())
    }

    /// An array's length (`None`: indefinite).
    fn array(&mut self) -> Result<(Head, Option<u64>), Failure> {
        let head = self.head()?;
        if head.major() != 4 {
            return Err(self.mismatch(head, "expected array"));
        }
        Ok((head, self.length(head)?))
    }

    /// A map's number of entries (`None`: indefinite).
    fn map(&mut self) -> Result<Option<u64>, Failure> {
        let head = self.head()?;
        if head.major() != 5 {
            return Err(self.mismatch(head, "expected map"));
        }
        self.length(head)
    }

    /// Whether an indefinite array or map ends here; its break is consumed if so.
    fn at_break(&mut self) -> Result<bool, Failure> {
        let end = self.current()? == BREAK;
        if end {
            self.reader.pos += 1;
        }
        Ok(end)
    }

    /// Pass over one well-formed item (tags included), checking text strings' UTF-8 as
    /// reading them would. It recurses as the item nests: [`crate::decode`] bounds that.
    fn skip(&mut self) -> Result<(), Failure> {
        let head = self.head()?;
        match head.major() {
            0 | 1 => {
                self.argument(head)?;
            }
            2 | 3 => {
                self.chunks(head)?;
            }
            4 | 5 => {
                let per_entry = u64::from(head.major() - 3);
                match self.length(head)? {
                    Some(n) => {
                        for _ in 0..n {
                            for _ in 0..per_entry {
                                self.skip()?;
                            }
                        }
                    }
                    None => {
                        while !self.at_break()? {
                            for _ in 0..per_entry {
                                self.skip()?;
                            }
                        }
                    }
                }
            }
            6 => {
                self.argument(head)?;
                self.skip()?;
            }
            _ => match head.info() {
                0..24 => {}
                24..28 => {
                    let width = 1 << (head.info() - 24);
                    self.read(head.at, |r| r.take(width))?;
                }
                _ => return Err(self.mismatch(head, "expected an item")),
            },
        }
        Ok(())
    }
}

macro_rules! integers {
    ($($method:ident => $visit:ident($ty:ty, $signed:expr, $name:expr)),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
                visitor.$visit(self.integer::<$ty>($signed, $name)?)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Failure;

    /// What the item says it is, as the library read it: integers by their range, strings
    /// borrowed unless indefinite, tags only as the bignums of `u128` and `i128`.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let at = self.reader.pos;
        match self.current()? {
            0x00..=0x1b => self.deserialize_u64(visitor),
            0x20..=0x3b => {
                let n = self.integer::<i128>(true, "expected int")?;
                match i64::try_from(n) {
                    Ok(n) => visitor.visit_i64(n),
                    Err(_) => visitor.visit_i128(n),
                }
            }
            0x40..=0x5b => visitor.visit_borrowed_bytes(self.bytes()?),
            0x60..=0x7b => visitor.visit_borrowed_str(self.text()?),
            b @ (0x5f | 0x7f) => {
                let head = self.head()?;
                let bytes = self.chunks(head)?;
                if b == 0x5f {
                    visitor.visit_byte_buf(bytes)
                } else {
                    // Checked chunk by chunk, so whole.
                    visitor.visit_string(String::from_utf8(bytes).map_err(|_| invalid_utf8(at))?)
                }
            }
            0x80..=0x9b | 0x9f => self.deserialize_seq(visitor),
            0xa0..=0xbb | 0xbf => self.deserialize_map(visitor),
            0xc0..=0xdb => {
                let mut probe = Deserializer {
                    reader: self.reader,
                    depth: self.depth,
                };
                let head = probe.head()?;
                match probe.argument(head)? {
                    2 => self.deserialize_u128(visitor),
                    3 => self.deserialize_i128(visitor),
                    tag => Err(Failure::at(format_args!("unexpected tag {tag}"), at, "")),
                }
            }
            0xf4 | 0xf5 => self.deserialize_bool(visitor),
            0xf6 => {
                self.reader.pos += 1;
                visitor.visit_none()
            }
            0xfa => self.deserialize_f32(visitor),
            0xfb => self.deserialize_f64(visitor),
            initial => Err(self.mismatch(Head { at, initial }, "unexpected type")),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let head = self.head()?;
        match head.initial {
            0xf4 => visitor.visit_bool(false),
            0xf5 => visitor.visit_bool(true),
            _ => Err(self.mismatch(head, "expected bool")),
        }
    }

    integers!(
        deserialize_u8 => visit_u8(u8, false, "expected u8"),
        deserialize_u16 => visit_u16(u16, false, "expected u16"),
        deserialize_u32 => visit_u32(u32, false, "expected u32"),
        deserialize_u64 => visit_u64(u64, false, "expected u64"),
        deserialize_i8 => visit_i8(i8, true, "expected i8"),
        deserialize_i16 => visit_i16(i16, true, "expected i16"),
        deserialize_i32 => visit_i32(i32, true, "expected i32"),
        deserialize_i64 => visit_i64(i64, true, "expected i64"),
    );

    /// An integer, or a bignum: tag 2 (positive) or 3 (negative, `-1 - n`) on definite bytes.
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        if self.current()? >> 5 != 6 {
            return visitor.visit_i128(self.integer(true, "expected i128")?);
        }
        let head = self.head()?;
        let tag = self.argument(head)?;
        if tag != 2 && tag != 3 {
            return Err(Failure::at(
                format_args!("unexpected tag {tag}"),
                head.at,
                "expected bignum tag (2 or 3)",
            ));
        }
        let n = i128::try_from(self.bignum(head)?)
            .map_err(|_| Failure::at(format_args!("bignum exceeds i128 range"), head.at, ""))?;
        visitor.visit_i128(if tag == 2 { n } else { -1 - n })
    }

    /// An unsigned integer, or a bignum of tag 2 on definite bytes.
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        if self.current()? >> 5 != 6 {
            return visitor.visit_u128(self.integer(false, "expected u128")?);
        }
        let head = self.head()?;
        let tag = self.argument(head)?;
        if tag != 2 {
            return Err(Failure::at(
                format_args!("unexpected tag {tag}"),
                head.at,
                "expected positive bignum tag (2)",
            ));
        }
        visitor.visit_u128(self.bignum(head)?)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let head = self.head()?;
        match head.initial {
            0xfa => visitor.visit_f32(f32::from_be_bytes(self.read(head.at, Reader::array)?)),
            _ => Err(self.mismatch(head, "expected f32")),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let head = self.head()?;
        match head.initial {
            0xfa => {
                visitor.visit_f64(f32::from_be_bytes(self.read(head.at, Reader::array)?).into())
            }
            0xfb => visitor.visit_f64(f64::from_be_bytes(self.read(head.at, Reader::array)?)),
            _ => Err(self.mismatch(head, "expected f64")),
        }
    }

    /// A character is written as its code point.
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let at = self.reader.pos;
        let n = self.integer::<u32>(false, "expected u32")?;
        let c = char::from_u32(n)
            .ok_or_else(|| Failure::at(format_args!("invalid char {n:#x}"), at, ""))?;
        visitor.visit_char(c)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        visitor.visit_borrowed_str(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        visitor.visit_borrowed_bytes(self.bytes()?)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        visitor.visit_bytes(self.bytes()?)
    }

    /// `null` is none; anything else is some.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        if self.current()? == crate::NULL {
            self.reader.pos += 1;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    /// A unit reads from `null`, as [`crate::encode`] writes it, or from an empty array,
    /// as the library wrote it and other encoders do.
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        if self.current()? == crate::NULL {
            self.reader.pos += 1;
            return visitor.visit_unit();
        }
        let head = self.head()?;
        if head.major() != 4 {
            return Err(self.mismatch(head, "expected unit (null)"));
        }
        let empty = match self.length(head)? {
            Some(n) => n == 0,
            None => self.at_break()?,
        };
        if !empty {
            // Read the first item, so that the error says where it ends, as serde's
            // sequence visitors do.
            self.skip()?;
            return Err(de::Error::invalid_type(Unexpected::Seq, &visitor));
        }
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Failure> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let (_, left) = self.array()?;
        self.nested(|de| visitor.visit_seq(Items { de, left }))
    }

    /// A tuple is an array of exactly its length.
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Failure> {
        let (head, left) = self.array()?;
        if left != u64::try_from(len).ok() {
            return Err(Failure::at(
                format_args!("invalid length {}", Length(left)),
                head.at,
                &format!("expected an array of {len}"),
            ));
        }
        self.nested(|de| visitor.visit_seq(Items { de, left }))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        let left = self.map()?;
        self.nested(|de| visitor.visit_map(Items { de, left }))
    }

    /// A struct is a map from field names, as the serializer writes it.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.deserialize_map(visitor)
    }

    /// A unit variant is its name; any other variant a map of one entry from its name to
    /// its value. As the library did, a name alone reads the next item as a variant's value
    /// and a map's value is left for the variant to read.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failure> {
        if let 0xa0..=0xbb = self.current()? {
            let at = self.reader.pos;
            if self.map()? != Some(1) {
                return Err(Failure::at(format_args!("invalid enum map length"), at, ""));
            }
        }
        self.nested(|de| visitor.visit_enum(de))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        self.skip()?;
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

mod access;
mod errors;
#[cfg(test)]
mod tests;
