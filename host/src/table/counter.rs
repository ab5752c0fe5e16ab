//! CBOR integers, for counters, and the few heads the host writes itself (the
//! `ETS-TRANSFER` message).

/// A CBOR integer that fits in an `i64`, or `None`.
pub(super) fn decode(term: &[u8]) -> Option<i64> {
    let (&first, rest) = term.split_first()?;
    let major = first >> 5;
    let n: u64 = match (first & 0x1f, rest.len()) {
        (n @ 0..24, 0) => u64::from(n),
        (24, 1) => u64::from(rest[0]),
        (25, 2) => u64::from(u16::from_be_bytes(rest.try_into().ok()?)),
        (26, 4) => u64::from(u32::from_be_bytes(rest.try_into().ok()?)),
        (27, 8) => u64::from_be_bytes(rest.try_into().ok()?),
        _ => return None,
    };
    let n = i64::try_from(n).ok()?;
    match major {
        0 => Some(n),
        1 => Some(-1 - n),
        _ => None,
    }
}

/// An `i64` as a CBOR integer in its shortest form.
pub(super) fn encode(n: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    if n >= 0 {
        head(&mut out, 0, n.cast_unsigned());
    } else {
        head(&mut out, 1, (-1 - n).cast_unsigned());
    }
    out
}

/// A CBOR head of `major` type with argument `n`, in its shortest form.
pub(super) fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    if n < 24 {
        out.push(major | n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.extend_from_slice(&[major | 24, n]);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(major | 25);
        out.extend_from_slice(&n.to_be_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(major | 26);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

pub(super) fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}
