//! Canonical CBOR (RFC 8949 section 4.2.1), so that equal keys are equal bytes whoever
//! encoded them: definite lengths, the shortest head for every integer and length, floats in
//! the shortest width that keeps their value, and map entries sorted by their encoded keys.
//! Serde maps such as `HashMap` iterate in no fixed order, and other languages' encoders
//! choose widths freely; the registry compares what this returns.
//!
//! Built on [`walk`], so it does not recurse: registry keys are canonicalized inside host
//! imports, on the calling process's fiber stack.

use super::walk::{Halt, Token, Visit, f16_to_f64, walk};

/// The canonical form of one well-formed CBOR item nested at most [`super::MAX_TERM_DEPTH`] deep,
/// or `None` if `bytes` is not exactly one such item.
pub(crate) fn canonical(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut builder = Builder {
        open: Vec::new(),
        done: Vec::with_capacity(bytes.len()),
    };
    walk(bytes, &mut builder).map_err(Halt::well_formed).ok()?;
    Some(builder.done)
}

/// A container being rebuilt.
enum Open {
    Array {
        count: u64,
        items: Vec<u8>,
    },
    Map {
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        key: Option<Vec<u8>>,
    },
    Tag {
        tag: u64,
        item: Vec<u8>,
    },
}

struct Builder {
    /// Containers still open, innermost last.
    open: Vec<Open>,
    /// The top-level item, once complete.
    done: Vec<u8>,
}

impl Builder {
    /// Where a complete item's bytes go: into the innermost open container, or out.
    fn emit(&mut self, item: Vec<u8>) {
        match self.open.last_mut() {
            None => self.done.extend_from_slice(&item),
            Some(Open::Array { count, items }) => {
                *count += 1;
                items.extend_from_slice(&item);
            }
            Some(Open::Map { entries, key }) => match key.take() {
                None => *key = Some(item),
                Some(k) => entries.push((k, item)),
            },
            Some(Open::Tag { item: slot, .. }) => *slot = item,
        }
    }
}

impl<'a> Visit<'a> for Builder {
    type Stop = std::convert::Infallible;

    fn scalar(&mut self, token: Token<'a>) -> Result<(), Self::Stop> {
        // Into an array or the top level it goes where it ends up, with no buffer of its own
        // (registry keys are canonicalized on every `via` send).
        let mut own = Vec::new();
        let direct = match self.open.last_mut() {
            None => Some(&mut self.done),
            Some(Open::Array { count, items }) => {
                *count += 1;
                Some(items)
            }
            Some(Open::Map { .. } | Open::Tag { .. }) => None,
        };
        let in_place = direct.is_some();
        let out = direct.unwrap_or(&mut own);
        match token {
            Token::Uint(n) => head(out, 0, n),
            Token::Nint(n) => head(out, 1, n),
            Token::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(&b);
            }
            Token::Text(t) => {
                head(out, 3, t.len() as u64);
                out.extend_from_slice(&t);
            }
            Token::Simple(v @ 0..24) => out.push(0xe0 | v),
            Token::Simple(v) => out.extend_from_slice(&[0xf8, v]),
            Token::Float(x) => float(out, x),
            Token::Array(_) | Token::Map(_) | Token::Tag(_) => unreachable!("not a scalar"),
        }
        if !in_place {
            self.emit(own);
        }
        Ok(())
    }

    fn open(&mut self, token: Token<'a>) -> Result<(), Self::Stop> {
        self.open.push(match token {
            Token::Array(_) => Open::Array {
                count: 0,
                items: Vec::new(),
            },
            Token::Map(_) => Open::Map {
                entries: Vec::new(),
                key: None,
            },
            Token::Tag(tag) => Open::Tag {
                tag,
                item: Vec::new(),
            },
            _ => unreachable!("not a container"),
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), Self::Stop> {
        let mut out = Vec::new();
        match self.open.pop().expect("walk closes only what it opened") {
            Open::Array { count, items } => {
                head(&mut out, 4, count);
                out.extend_from_slice(&items);
            }
            Open::Map { mut entries, .. } => {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                head(&mut out, 5, entries.len() as u64);
                for (k, v) in entries {
                    out.extend_from_slice(&k);
                    out.extend_from_slice(&v);
                }
            }
            Open::Tag { tag, item } => {
                head(&mut out, 6, tag);
                out.extend_from_slice(&item);
            }
        }
        self.emit(out);
        Ok(())
    }
}

/// A head in its shortest form.
pub(super) fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..24 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// A float in the narrowest of half, single and double precision that holds it exactly;
/// every NaN as the half-precision quiet NaN.
fn float(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
    } else if let Some(h) = f64_to_f16(x) {
        out.push(0xf9);
        out.extend_from_slice(&h.to_be_bytes());
    } else if f64::from(x as f32) == x {
        out.push(0xfa);
        out.extend_from_slice(&(x as f32).to_be_bytes());
    } else {
        out.push(0xfb);
        out.extend_from_slice(&x.to_be_bytes());
    }
}

/// `x` as a half-precision float, if that holds it exactly (NaN excepted).
fn f64_to_f16(x: f64) -> Option<u16> {
    let f = x as f32;
    if f64::from(f) != x {
        return None;
    }
    let bits = f.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32 - 127;
    let mant = bits & 0x7f_ffff;
    let h = if f == 0.0 {
        sign
    } else if f.is_infinite() {
        sign | 0x7c00
    } else if (-14..=15).contains(&exp) {
        if mant & 0x1fff != 0 {
            return None;
        }
        sign | (((exp + 15) as u16) << 10) | (mant >> 13) as u16
    } else if (-24..-14).contains(&exp) {
        let full = 0x80_0000 | mant;
        let shift = (-(exp + 1)) as u32;
        if full & ((1 << shift) - 1) != 0 {
            return None;
        }
        sign | (full >> shift) as u16
    } else {
        return None;
    };
    (f16_to_f64(h) == x).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn integers_and_lengths_take_their_shortest_head() {
        // 10 as a two-byte unsigned, and a text string with a one-byte length.
        assert_eq!(canonical(&[0x18, 0x0a]), Some(vec![0x0a]));
        assert_eq!(canonical(&[0x19, 0x00, 0x0a]), Some(vec![0x0a]));
        assert_eq!(canonical(&[0x78, 0x01, b'a']), Some(vec![0x61, b'a']));
        assert_eq!(canonical(&[0x39, 0x01, 0x00]), Some(vec![0x39, 0x01, 0x00]));
    }

    #[test]
    fn indefinite_lengths_become_definite() {
        // [_ 1, 2] and (_ "a", "b")
        assert_eq!(
            canonical(&[0x9f, 0x01, 0x02, 0xff]),
            Some(vec![0x82, 0x01, 0x02])
        );
        assert_eq!(
            canonical(&[0x7f, 0x61, b'a', 0x61, b'b', 0xff]),
            Some(vec![0x62, b'a', b'b'])
        );
    }

    #[test]
    fn map_entries_are_sorted_by_their_encoded_keys() {
        // {"b": 1, "a": 2} and {_ "a": 2, "b": 1}
        let ba = [0xa2, 0x61, b'b', 0x01, 0x61, b'a', 0x02];
        let ab = [0xbf, 0x61, b'a', 0x02, 0x61, b'b', 0x01, 0xff];
        assert_eq!(canonical(&ba), canonical(&ab));
        assert_eq!(
            canonical(&ba).unwrap(),
            [0xa2, 0x61, b'a', 0x02, 0x61, b'b', 0x01]
        );
    }

    #[test]
    fn floats_take_the_narrowest_exact_width() {
        let double = |x: f64| {
            let mut v = vec![0xfb];
            v.extend_from_slice(&x.to_be_bytes());
            v
        };
        assert_eq!(canonical(&double(1.5)), Some(vec![0xf9, 0x3e, 0x00]));
        assert_eq!(canonical(&double(0.1)), Some(double(0.1)));
        let single = canonical(&double(100000.0)).unwrap();
        assert_eq!(single[0], 0xfa);
        assert_eq!(canonical(&double(f64::NAN)), Some(vec![0xf9, 0x7e, 0x00]));
        // The smallest half-precision subnormal.
        assert_eq!(
            canonical(&double(2f64.powi(-24))),
            Some(vec![0xf9, 0x00, 0x01])
        );
    }

    #[test]
    fn malformed_or_trailing_bytes_are_not_canonicalized() {
        assert_eq!(canonical(&[]), None);
        assert_eq!(canonical(&[0x82, 0x01]), None);
        assert_eq!(canonical(&[0x01, 0x02]), None);
        assert_eq!(canonical(&[0xff]), None);
    }
}
