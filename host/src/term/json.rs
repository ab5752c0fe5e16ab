//! A term as JSON, built without recursion (see [`walk`]): byte strings become arrays of
//! numbers, tags are dropped for their item, map keys that are not text become their JSON text,
//! `undefined`, other simple values and non-finite floats become `null`.
//!
//! A key's JSON text is escaped again inside every key that holds it, so nested keys double
//! in length with each level: the text of all such keys together is bounded by the term's
//! own length.

use serde_json::{Map, Number, Value};

use super::TermError;
use super::walk::{Halt, Token, Visit, walk};

/// `term` as JSON.
pub(crate) fn to_json(term: &[u8]) -> Result<Value, TermError> {
    let mut builder = Builder {
        open: Vec::new(),
        done: None,
        key_text_left: KEY_TEXT_PER_BYTE * term.len() + KEY_TEXT_BASE,
    };
    walk(term, &mut builder).map_err(|h| match h {
        Halt::Malformed(e) | Halt::Stopped(e) => e,
    })?;
    Ok(builder.done.unwrap_or(Value::Null))
}

enum Open {
    Array(Vec<Value>),
    Map(Map<String, Value>, Option<String>),
    Tag(Option<Value>),
}

/// How many bytes of JSON text the keys that are not text may take, per byte of the term,
/// plus [`KEY_TEXT_BASE`]: a byte string's byte is at most 4 (`255,`), and doubling it once
/// or twice by nesting still fits.
const KEY_TEXT_PER_BYTE: usize = 16;
const KEY_TEXT_BASE: usize = 4096;

struct Builder {
    open: Vec<Open>,
    done: Option<Value>,
    /// What is left of the budget for the text of keys that are not text.
    key_text_left: usize,
}

impl Builder {
    fn emit(&mut self, value: Value) -> Result<(), TermError> {
        match self.open.last_mut() {
            None => self.done = Some(value),
            Some(Open::Array(items)) => items.push(value),
            Some(Open::Map(map, key)) => match key.take() {
                Some(k) => {
                    map.insert(k, value);
                }
                None => {
                    *key = Some(match value {
                        Value::String(s) => s,
                        // Not recursing deeper than MAX_TERM_DEPTH (the walk's limit), and
                        // at most twice the budget: the keys inside fit in it.
                        other => {
                            let text = other.to_string();
                            self.key_text_left =
                                self.key_text_left.checked_sub(text.len()).ok_or_else(|| {
                                    TermError(
                                        "map keys that are not text grow too long as JSON text"
                                            .into(),
                                    )
                                })?;
                            text
                        }
                    })
                }
            },
            Some(Open::Tag(item)) => *item = Some(value),
        }
        Ok(())
    }
}

impl<'a> Visit<'a> for Builder {
    type Stop = TermError;

    fn scalar(&mut self, token: Token<'a>) -> Result<(), TermError> {
        let value = match token {
            Token::Uint(n) => Value::Number(n.into()),
            Token::Nint(n) => match i64::try_from(n) {
                Ok(n) => Value::Number((-1 - n).into()),
                Err(_) => Number::from_f64(-1.0 - n as f64).map_or(Value::Null, Value::Number),
            },
            Token::Bytes(b) => Value::Array(b.iter().map(|&b| Value::Number(b.into())).collect()),
            Token::Text(t) => match String::from_utf8(t.into_owned()) {
                Ok(s) => Value::String(s),
                Err(_) => return Err(TermError("a text string that is not UTF-8".into())),
            },
            Token::Simple(20) => Value::Bool(false),
            Token::Simple(21) => Value::Bool(true),
            Token::Simple(_) => Value::Null,
            Token::Float(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
            Token::Array(_) | Token::Map(_) | Token::Tag(_) => unreachable!("not a scalar"),
        };
        self.emit(value)
    }

    fn open(&mut self, token: Token<'a>) -> Result<(), TermError> {
        self.open.push(match token {
            Token::Array(_) => Open::Array(Vec::new()),
            Token::Map(_) => Open::Map(Map::new(), None),
            Token::Tag(_) => Open::Tag(None),
            _ => unreachable!("not a container"),
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), TermError> {
        let value = match self.open.pop().expect("walk closes only what it opened") {
            Open::Array(items) => Value::Array(items),
            Open::Map(map, _) => Value::Object(map),
            // The tag's item stands for it.
            Open::Tag(item) => item.unwrap_or(Value::Null),
        };
        self.emit(value)
    }
}

#[cfg(test)]
mod tests {
    use super::to_json;
    use serde_json::json;

    #[test]
    fn byte_strings_tags_and_integer_keys_have_a_json_form() {
        // {1: h'0102', "t": 1(-3), "f": 1.5, "n": null}
        let term = [
            0xa4, 0x01, 0x42, 0x01, 0x02, 0x61, b't', 0xc1, 0x22, 0x61, b'f', 0xf9, 0x3e, 0x00,
            0x61, b'n', 0xf6,
        ];
        assert_eq!(
            to_json(&term).unwrap(),
            json!({"1": [1, 2], "t": -3, "f": 1.5, "n": null})
        );
    }

    #[test]
    fn text_that_is_not_utf8_and_deep_terms_are_refused() {
        assert!(to_json(&[0x61, 0xff]).is_err());
        let mut deep = vec![0x81u8; 1_000_000];
        deep.push(0x01);
        assert!(to_json(&deep).is_err());
    }
}
