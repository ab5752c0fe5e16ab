//! The decoder's errors, worded as the CBOR library's were.

use crate::decode_error::Failure;
use crate::term::TermError;

/// "end of input bytes at position …".
// Cold, as every error path here: the reads around them are the decoder's hot path.
#[cold]
pub(super) fn end_of_input(at: usize) -> Failure {
    Failure::at(format_args!("end of input bytes"), at, "")
}

/// The tokenizer's error `e`, at `at`.
#[cold]
pub(super) fn located(e: TermError, at: usize) -> Failure {
    Failure::at(format_args!("{}", e.0), at, "")
}

/// "… overflows target type at position …: expected …".
#[cold]
pub(super) fn overflow(value: i128, at: usize, name: &str) -> Failure {
    Failure::at(format_args!("{value} overflows target type"), at, name)
}

/// "nested deeper than … at position …".
#[cold]
pub(super) fn nested_too_deep(at: usize, most: usize) -> Failure {
    Failure::at(format_args!("nested deeper than {most}"), at, "")
}

/// "invalid utf-8 at position …".
#[cold]
pub(super) fn invalid_utf8(at: usize) -> Failure {
    Failure::at(format_args!("invalid utf-8"), at, "")
}

/// A CBOR type as the library named it in its errors, from an item's first byte (and the
/// next, which tells a negative integer's range).
pub(super) struct TypeName(pub(super) u8, pub(super) Option<u8>);

impl std::fmt::Display for TypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let wide = self.1.is_some_and(|b| b >= 0x80);
        let name = match self.0 {
            0x00..=0x18 => "u8",
            0x19 => "u16",
            0x1a => "u32",
            0x1b => "u64",
            0x20..=0x37 => "i8",
            // A one-byte argument of 0x80 or more is -129 or less, and so on.
            0x38 => {
                if wide {
                    "i16"
                } else {
                    "i8"
                }
            }
            0x39 => {
                if wide {
                    "i32"
                } else {
                    "i16"
                }
            }
            0x3a => {
                if wide {
                    "i64"
                } else {
                    "i32"
                }
            }
            0x3b => {
                if wide {
                    "int"
                } else {
                    "i64"
                }
            }
            0x40..=0x5b => "bytes",
            0x5f => "indefinite bytes",
            0x60..=0x7b => "string",
            0x7f => "indefinite string",
            0x80..=0x9b => "array",
            0x9f => "indefinite array",
            0xa0..=0xbb => "map",
            0xbf => "indefinite map",
            0xc0..=0xdb => "tag",
            0xe0..=0xf3 | 0xf8 => "simple",
            0xf4 | 0xf5 => "bool",
            0xf6 => "null",
            0xf7 => "undefined",
            0xf9 => "f16",
            0xfa => "f32",
            0xfb => "f64",
            0xff => "break",
            other => return write!(f, "{other:#x}"),
        };
        f.write_str(name)
    }
}

/// An array's or map's length as the library showed it.
pub(super) struct Length(pub(super) Option<u64>);

impl std::fmt::Display for Length {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("(indefinite)"),
        }
    }
}
