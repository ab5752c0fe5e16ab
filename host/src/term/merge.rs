//! Appending a dynamic child's start args to its template's, as OTP's
//! `supervisor:start_child(Sup, ExtraArgs)` appends to the template's argument list.
//!
//! Done on the CBOR itself (never through JSON, which would lose byte strings, tags and
//! non-string map keys): two arrays are concatenated, two maps merged (the extra args' entry
//! wins for a key both have, keys compared on their canonical form), anything else becomes
//! the pair `[template, extra]`; `null` extra args leave the template as it is.

use super::canonical::{canonical, head};
use super::walk::{check, first_len};
use super::{NULL, Term, TermError};

/// The args a dynamic supervisor's child starts with: `template` with `extra` appended.
///
/// # Errors
/// If either is not one well-formed term nested at most [`super::MAX_TERM_DEPTH`] deep.
pub(crate) fn merge_args(template: &[u8], extra: &[u8]) -> Result<Term, TermError> {
    // On failure, say why (a second walk, on the error path only).
    let canon = |term: &[u8], which: &str| {
        canonical(term).ok_or_else(|| {
            let why = check(term).err().map_or_else(String::new, |e| e.0);
            TermError(format!("{which} args: {why}"))
        })
    };
    let template = canon(template, "the template's")?;
    if extra == [NULL] {
        return Ok(template);
    }
    let extra = canon(extra, "the child's")?;
    let (t, e) = (split(&template)?, split(&extra)?);
    let mut out = Vec::with_capacity(template.len() + extra.len());
    match (t, e) {
        (Items::Array(mut a), Items::Array(b)) => {
            a.extend(b);
            head(&mut out, 4, a.len() as u64);
            a.iter().for_each(|item| out.extend_from_slice(item));
        }
        (Items::Map(a), Items::Map(b)) => {
            // Sorted by encoded key, as a canonical map is; the extra args' entry wins.
            let entries: std::collections::BTreeMap<&[u8], &[u8]> =
                a.into_iter().chain(b).collect();
            head(&mut out, 5, entries.len() as u64);
            for (k, v) in entries {
                out.extend_from_slice(k);
                out.extend_from_slice(v);
            }
        }
        _ => {
            head(&mut out, 4, 2);
            out.extend_from_slice(&template);
            out.extend_from_slice(&extra);
        }
    }
    Ok(out)
}

/// A canonical term's top level: an array's items, a map's entries, or something else.
enum Items<'a> {
    Array(Vec<&'a [u8]>),
    Map(Vec<(&'a [u8], &'a [u8])>),
    Other,
}

/// The items of a canonical (so definite-length) array or map.
fn split(term: &[u8]) -> Result<Items<'_>, TermError> {
    let major = term[0] >> 5;
    if major != 4 && major != 5 {
        return Ok(Items::Other);
    }
    // The head's length: the additional information says how many bytes follow the first.
    let head_len = match term[0] & 0x1f {
        0..24 => 1,
        24 => 2,
        25 => 3,
        26 => 5,
        _ => 9,
    };
    let mut rest = &term[head_len..];
    let mut items = Vec::new();
    while !rest.is_empty() {
        let n = first_len(rest)?;
        items.push(&rest[..n]);
        rest = &rest[n..];
    }
    if major == 4 {
        return Ok(Items::Array(items));
    }
    Ok(Items::Map(
        items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::merge_args;
    use crate::term::{encode, from_json, to_json};

    fn merged(a: &str, b: &str) -> serde_json::Value {
        let (a, b) = (
            from_json(&serde_json::from_str(a).unwrap()),
            from_json(&serde_json::from_str(b).unwrap()),
        );
        to_json(&merge_args(&a, &b).unwrap()).unwrap()
    }

    #[test]
    fn arrays_concatenate_maps_merge_and_others_pair_up() {
        assert_eq!(merged("[1,2]", "[3]"), serde_json::json!([1, 2, 3]));
        assert_eq!(
            merged(r#"{"a":1,"b":2}"#, r#"{"b":3,"c":4}"#),
            serde_json::json!({"a": 1, "b": 3, "c": 4})
        );
        assert_eq!(merged("1", r#""x""#), serde_json::json!([1, "x"]));
        assert_eq!(merged("[1]", "null"), serde_json::json!([1]));
    }

    #[test]
    fn byte_strings_and_integer_keys_survive_a_merge() {
        let template = encode(&std::collections::BTreeMap::from([(1u8, 10u8)])).unwrap();
        let extra = encode(&std::collections::BTreeMap::from([(2u8, 20u8)])).unwrap();
        let out = merge_args(&template, &extra).unwrap();
        assert_eq!(out, [0xa2, 0x01, 0x0a, 0x02, 0x14]);
        let bytes = [0x81, 0x42, 0xde, 0xad];
        assert_eq!(
            merge_args(&bytes, &bytes).unwrap(),
            [0x82, 0x42, 0xde, 0xad, 0x42, 0xde, 0xad]
        );
    }

    #[test]
    fn deep_or_malformed_args_are_refused() {
        let mut deep = vec![0x81u8; 100_000];
        deep.push(0x01);
        assert!(merge_args(&[0x80], &deep).is_err());
        assert!(merge_args(&[0x80], &[0x82, 0x01]).is_err());
    }
}
