//! Reading a term without recursion: a tokenizer for CBOR heads and a loop that tracks open
//! arrays, maps and tags on a heap stack of at most [`MAX_TERM_DEPTH`] frames.
//!
//! Every host path that looks inside a guest's term goes through [`walk`], so the host's own
//! stack use does not depend on what a guest sends: host imports run on the process's fiber,
//! a stack of fixed size whose overrun would end the node (see the host's `pools` module).

use std::borrow::Cow;

use crate::term::{MAX_TERM_DEPTH, TermError};

/// The break byte that ends an indefinite-length item.
pub(crate) const BREAK: u8 = 0xff;

/// One data item's head (and, for strings, its bytes).
#[derive(Debug)]
pub enum Token<'a> {
    /// An unsigned integer.
    Uint(u64),
    /// The negative integer `-1 - n`.
    Nint(u64),
    /// A byte string, its chunks joined if it was indefinite.
    Bytes(Cow<'a, [u8]>),
    /// A text string's bytes (not checked for UTF-8), chunks joined.
    Text(Cow<'a, [u8]>),
    /// An array of this many items, or indefinite.
    Array(Option<u64>),
    /// A map of this many entries, or indefinite.
    Map(Option<u64>),
    /// A tag, followed by the one item it tags.
    Tag(u64),
    /// A simple value (`false` is 20, `true` 21, `null` 22, `undefined` 23).
    Simple(u8),
    /// A floating-point number of any width.
    Float(f64),
}

/// What [`walk`] reports, in document order.
pub trait Visit<'a> {
    /// Stop the walk early with this error (e.g. an output that is full).
    type Stop;

    /// A scalar item: an integer, string, simple value or float.
    fn scalar(&mut self, token: Token<'a>) -> Result<(), Self::Stop>;
    /// An array, map or tag opens; its items follow until the matching [`Visit::close`].
    fn open(&mut self, token: Token<'a>) -> Result<(), Self::Stop>;
    /// The innermost open array, map or tag is complete.
    fn close(&mut self) -> Result<(), Self::Stop>;
}

/// Why a walk ended early.
#[derive(Debug)]
pub enum Halt<S> {
    /// The bytes are not one well-formed CBOR item nested at most [`MAX_TERM_DEPTH`] deep.
    Malformed(TermError),
    /// The visitor stopped the walk.
    Stopped(S),
}

impl<S> From<TermError> for Halt<S> {
    fn from(e: TermError) -> Self {
        Halt::Malformed(e)
    }
}

/// An open container: how many items it still expects (`None`: until a break).
struct Frame {
    left: Option<u64>,
    /// An indefinite map has seen an odd number of items (a key without its value).
    odd: bool,
    map: bool,
}

/// Walk the one CBOR item `bytes` holds, reporting it to `visit`; no bytes may follow it.
pub fn walk<'a, V: Visit<'a>>(bytes: &'a [u8], visit: &mut V) -> Result<(), Halt<V::Stop>> {
    if walk_first(bytes, visit)? != bytes.len() {
        return Err(malformed("bytes after the item").into());
    }
    Ok(())
}

/// Walk the first CBOR item of `bytes`, reporting it to `visit`; returns its length.
fn walk_first<'a, V: Visit<'a>>(bytes: &'a [u8], visit: &mut V) -> Result<usize, Halt<V::Stop>> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut open: Vec<Frame> = Vec::new();
    loop {
        if reader.peek() == Some(BREAK) {
            reader.pos += 1;
            match open.pop() {
                Some(Frame {
                    left: None,
                    odd: false,
                    ..
                }) => visit.close().map_err(Halt::Stopped)?,
                _ => return Err(malformed("a break where no indefinite item is open").into()),
            }
        } else {
            let token = reader.token()?;
            let left = match &token {
                Token::Array(n) => Some(*n),
                Token::Map(n) => Some(match n {
                    Some(n) => Some(n.checked_mul(2).ok_or_else(|| malformed("map too long"))?),
                    None => None,
                }),
                Token::Tag(_) => Some(Some(1)),
                _ => None,
            };
            match left {
                None => visit.scalar(token).map_err(Halt::Stopped)?,
                Some(left) => {
                    if open.len() >= MAX_TERM_DEPTH {
                        return Err(Halt::Malformed(TermError(format!(
                            "nested deeper than {MAX_TERM_DEPTH} levels"
                        ))));
                    }
                    let map = matches!(token, Token::Map(_));
                    visit.open(token).map_err(Halt::Stopped)?;
                    if left == Some(0) {
                        visit.close().map_err(Halt::Stopped)?;
                    } else {
                        open.push(Frame {
                            left,
                            odd: false,
                            map,
                        });
                        continue;
                    }
                }
            }
        }
        // One item is complete: count it in the containers it completes.
        loop {
            let Some(top) = open.last_mut() else {
                return Ok(reader.pos);
            };
            match &mut top.left {
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    open.pop();
                    visit.close().map_err(Halt::Stopped)?;
                }
                None => {
                    top.odd = top.map && !top.odd;
                    break;
                }
            }
        }
    }
}

/// Check that `bytes` is exactly one well-formed CBOR item nested at most [`MAX_TERM_DEPTH`] deep.
pub fn check(bytes: &[u8]) -> Result<(), TermError> {
    walk(bytes, &mut Nothing).map_err(Halt::well_formed)
}

/// The length of the first CBOR item of `bytes`, which must be well formed and nested at most
/// [`MAX_TERM_DEPTH`] deep.
pub fn first_len(bytes: &[u8]) -> Result<usize, TermError> {
    walk_first(bytes, &mut Nothing).map_err(Halt::well_formed)
}

/// A visitor that only lets the walk check the bytes.
struct Nothing;

impl Visit<'_> for Nothing {
    type Stop = std::convert::Infallible;
    fn scalar(&mut self, _: Token<'_>) -> Result<(), Self::Stop> {
        Ok(())
    }
    fn open(&mut self, _: Token<'_>) -> Result<(), Self::Stop> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), Self::Stop> {
        Ok(())
    }
}

impl Halt<std::convert::Infallible> {
    /// The error of a walk whose visitor never stops it.
    pub fn well_formed(self) -> TermError {
        match self {
            Halt::Malformed(e) => e,
            Halt::Stopped(never) => match never {},
        }
    }
}

fn malformed(what: &str) -> TermError {
    TermError(format!("malformed CBOR: {what}"))
}

/// Reads heads and strings from a position in a term: the tokenizer of [`walk`], and of the
/// term decoder (`crate::cbor_de`).
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

/// A head's argument: a number, or the start of an indefinite-length item.
pub(crate) enum Arg {
    Value(u64),
    Indefinite,
}

impl<'a> Reader<'a> {
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(crate) fn byte(&mut self) -> Result<u8, TermError> {
        let b = self.peek().ok_or_else(|| malformed("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn take(&mut self, n: u64) -> Result<&'a [u8], TermError> {
        // `get`, not indexing: a guest decodes with this too, and an index's bounds check
        // would put its panic text and this file's path into every guest's data.
        let (slice, end) = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .and_then(|end| Some((self.bytes.get(self.pos..end)?, end)))
            .ok_or_else(|| malformed("unexpected end"))?;
        self.pos = end;
        Ok(slice)
    }

    /// The next `N` bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], TermError> {
        self.take(N as u64)?
            .try_into()
            .map_err(|_| malformed("unexpected end"))
    }

    pub(crate) fn arg(&mut self, info: u8) -> Result<Arg, TermError> {
        let width = match info {
            0..24 => return Ok(Arg::Value(info.into())),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Ok(Arg::Indefinite),
            _ => return Err(malformed("reserved additional information")),
        };
        Ok(Arg::Value(
            self.take(width)?
                .iter()
                .fold(0u64, |n, &b| n << 8 | u64::from(b)),
        ))
    }

    pub(crate) fn definite(&mut self, info: u8) -> Result<u64, TermError> {
        match self.arg(info)? {
            Arg::Value(n) => Ok(n),
            Arg::Indefinite => Err(malformed("indefinite length where none is allowed")),
        }
    }

    fn token(&mut self) -> Result<Token<'a>, TermError> {
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        Ok(match major {
            0 => Token::Uint(self.definite(info)?),
            1 => Token::Nint(self.definite(info)?),
            2 => Token::Bytes(self.string(major, info, |_| Ok(()))?),
            3 => Token::Text(self.string(major, info, |_| Ok(()))?),
            4 | 5 => {
                let n = match self.arg(info)? {
                    Arg::Value(n) => Some(n),
                    Arg::Indefinite => None,
                };
                if major == 4 {
                    Token::Array(n)
                } else {
                    Token::Map(n)
                }
            }
            6 => Token::Tag(self.definite(info)?),
            _ => self.simple(info)?,
        })
    }

    /// A string's bytes; an indefinite string's definite chunks of the same major type joined.
    /// Each chunk is first given to `chunk` (the decoder checks a text's UTF-8 chunk by
    /// chunk, as RFC 8949 wants: a character may not straddle two chunks).
    pub(crate) fn string(
        &mut self,
        major: u8,
        info: u8,
        mut chunk: impl FnMut(&'a [u8]) -> Result<(), TermError>,
    ) -> Result<Cow<'a, [u8]>, TermError> {
        match self.arg(info)? {
            Arg::Value(n) => {
                let bytes = self.take(n)?;
                chunk(bytes)?;
                Ok(Cow::Borrowed(bytes))
            }
            Arg::Indefinite => {
                let mut data = Vec::new();
                while self.peek() != Some(BREAK) {
                    let head = self.byte()?;
                    if head >> 5 != major {
                        return Err(malformed("a string chunk of another type"));
                    }
                    let n = self.definite(head & 0x1f)?;
                    let bytes = self.take(n)?;
                    chunk(bytes)?;
                    data.extend_from_slice(bytes);
                }
                self.pos += 1;
                Ok(Cow::Owned(data))
            }
        }
    }

    /// Major type 7: simple values and floats.
    fn simple(&mut self, info: u8) -> Result<Token<'a>, TermError> {
        Ok(match info {
            0..24 => Token::Simple(info),
            24 => match self.byte()? {
                v @ 32.. => Token::Simple(v),
                _ => return Err(malformed("a two-byte simple value below 32")),
            },
            25 => Token::Float(f16_to_f64(u16::from_be_bytes(self.array()?))),
            26 => Token::Float(f64::from(f32::from_be_bytes(self.array()?))),
            27 => Token::Float(f64::from_be_bytes(self.array()?)),
            _ => return Err(malformed("reserved simple value")),
        })
    }
}

/// An IEEE 754 half-precision float's value.
pub fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f64::from(h & 0x3ff);
    sign * match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + mant / 1024.0) * 2f64.powi(exp - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::MAX_TERM_DEPTH;

    fn nested(depth: usize) -> Vec<u8> {
        let mut v = vec![0x81; depth];
        v.push(0x01);
        v
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted_and_one_deeper_is_refused() {
        assert!(check(&nested(MAX_TERM_DEPTH)).is_ok());
        let err = check(&nested(MAX_TERM_DEPTH + 1)).unwrap_err();
        assert!(err.0.contains("deeper"), "{err}");
    }

    #[test]
    fn a_million_levels_are_refused_without_recursing() {
        assert!(check(&nested(1_000_000)).is_err());
        // Indefinite arrays and tags count as levels too.
        let mut v = vec![0x9f; 1_000_000];
        v.push(0x01);
        assert!(check(&v).is_err());
        let mut v = vec![0xc1; 1_000_000];
        v.push(0x01);
        assert!(check(&v).is_err());
    }

    #[test]
    fn malformed_items_are_refused() {
        for bad in [
            &[][..],
            &[0x82, 0x01],
            &[0x01, 0x02],
            &[0xff],
            &[0xbf, 0x01, 0xff],
            &[0x9f, 0x01],
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x7f, 0x41, 0x00, 0xff],
            &[0x1c],
            &[0xf8, 0x10],
        ] {
            assert!(check(bad).is_err(), "{bad:02x?}");
        }
        for good in [
            &[0xf6][..],
            &[0xa1, 0x61, b'a', 0x80],
            &[0xbf, 0x01, 0x02, 0xff],
            &[0x9f, 0x9f, 0xff, 0xff],
            &[0xc1, 0x1a, 0, 0, 0, 1],
            &[0x7f, 0x61, b'a', 0xff],
        ] {
            assert!(check(good).is_ok(), "{good:02x?}");
        }
    }
}
