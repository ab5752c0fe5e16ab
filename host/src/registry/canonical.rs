//! Canonical CBOR (RFC 8949 section 4.2.1), so that equal keys are equal bytes whoever
//! encoded them: definite lengths, the shortest head for every integer and length, floats in
//! the shortest width that keeps their value, and map entries sorted by their encoded keys.
//! Serde maps such as `HashMap` iterate in no fixed order, and other languages' encoders
//! choose widths freely; the registry compares what this returns.

/// How deeply arrays, maps and tags may nest; deeper input is not canonicalized.
const MAX_DEPTH: usize = 256;

/// The canonical form of one well-formed CBOR item, or `None` if `bytes` is not exactly one.
pub(crate) fn canonical(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut out = Vec::with_capacity(bytes.len());
    reader.item(&mut out, 0)?;
    (reader.pos == bytes.len()).then_some(out)
}

/// The break byte that ends an indefinite-length item.
const BREAK: u8 = 0xff;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A head's argument: a number, or the start of an indefinite-length item.
enum Arg {
    Value(u64),
    Indefinite,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn arg(&mut self, info: u8) -> Option<Arg> {
        let width = match info {
            0..24 => return Some(Arg::Value(info.into())),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Some(Arg::Indefinite),
            _ => return None,
        };
        let mut n = 0u64;
        for &b in self.take(width)? {
            n = n << 8 | u64::from(b);
        }
        Some(Arg::Value(n))
    }

    fn peek_break(&mut self) -> bool {
        if self.bytes.get(self.pos) == Some(&BREAK) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn item(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        match major {
            0 | 1 => match self.arg(info)? {
                Arg::Value(n) => head(out, major, n),
                Arg::Indefinite => return None,
            },
            2 | 3 => {
                let data = self.string(major, info)?;
                head(out, major, data.len() as u64);
                out.extend_from_slice(&data);
            }
            4 => {
                let mut items = Vec::new();
                let mut count = 0u64;
                match self.arg(info)? {
                    Arg::Value(n) => {
                        for _ in 0..n {
                            self.item(&mut items, depth + 1)?;
                        }
                        count = n;
                    }
                    Arg::Indefinite => {
                        while !self.peek_break() {
                            self.item(&mut items, depth + 1)?;
                            count += 1;
                        }
                    }
                }
                head(out, 4, count);
                out.extend_from_slice(&items);
            }
            5 => {
                let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                let mut entry = |r: &mut Self| -> Option<()> {
                    let (mut k, mut v) = (Vec::new(), Vec::new());
                    r.item(&mut k, depth + 1)?;
                    r.item(&mut v, depth + 1)?;
                    entries.push((k, v));
                    Some(())
                };
                match self.arg(info)? {
                    Arg::Value(n) => {
                        for _ in 0..n {
                            entry(self)?;
                        }
                    }
                    Arg::Indefinite => {
                        while !self.peek_break() {
                            entry(self)?;
                        }
                    }
                }
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                head(out, 5, entries.len() as u64);
                for (k, v) in entries {
                    out.extend_from_slice(&k);
                    out.extend_from_slice(&v);
                }
            }
            6 => match self.arg(info)? {
                Arg::Value(tag) => {
                    head(out, 6, tag);
                    self.item(out, depth + 1)?;
                }
                Arg::Indefinite => return None,
            },
            _ => self.simple(info, out)?,
        }
        Some(())
    }

    /// A byte or text string's bytes, its chunks joined if it was indefinite.
    fn string(&mut self, major: u8, info: u8) -> Option<Vec<u8>> {
        match self.arg(info)? {
            Arg::Value(n) => Some(self.take(usize::try_from(n).ok()?)?.to_vec()),
            Arg::Indefinite => {
                let mut data = Vec::new();
                while !self.peek_break() {
                    let chunk = self.byte()?;
                    if chunk >> 5 != major {
                        return None;
                    }
                    match self.arg(chunk & 0x1f)? {
                        Arg::Value(n) => {
                            data.extend_from_slice(self.take(usize::try_from(n).ok()?)?)
                        }
                        Arg::Indefinite => return None,
                    }
                }
                Some(data)
            }
        }
    }

    /// Major type 7: simple values as they are, floats in their shortest exact width.
    fn simple(&mut self, info: u8, out: &mut Vec<u8>) -> Option<()> {
        let value = match info {
            0..24 => {
                out.push(0xe0 | info);
                return Some(());
            }
            24 => {
                let v = self.byte()?;
                out.extend_from_slice(&[0xf8, v]);
                return Some(());
            }
            25 => {
                let b = self.take(2)?;
                f16_to_f64(u16::from_be_bytes([b[0], b[1]]))
            }
            26 => f64::from(f32::from_be_bytes(self.take(4)?.try_into().ok()?)),
            27 => f64::from_be_bytes(self.take(8)?.try_into().ok()?),
            _ => return None,
        };
        float(out, value);
        Some(())
    }
}

/// A head in its shortest form.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
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

fn f16_to_f64(h: u16) -> f64 {
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
