//! Messages and state cross the host boundary as CBOR; this is the one codec.
//!
//! Unit values (`()`, unit structs) are written as CBOR `null` so that JSON tools see
//! `null`, and a top-level `null` is read back as `()`.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// CBOR `null`.
const NULL: u8 = 0xf6;
/// CBOR `[]`, which is how the CBOR library reads `()`.
const EMPTY_ARRAY: u8 = 0x80;

/// Encode a value as CBOR bytes.
///
/// # Panics
/// If the value's `Serialize` implementation fails, which for plain data types it never does.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut ser = minicbor_serde::Serializer::new(Vec::new());
    ser.serialize_unit_as_null(true);
    value
        .serialize(&mut ser)
        .expect("CBOR encoding of a serde value cannot fail");
    ser.into_encoder().into_writer()
}

/// Decode CBOR bytes into a value, or say why they do not fit.
///
/// # Errors
/// A description of where the bytes and `T` disagree.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match minicbor_serde::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) if bytes == [NULL] => {
            minicbor_serde::from_slice(&[EMPTY_ARRAY]).map_err(|_| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}
