//! Reading back units written as `null`: the term codec writes `()` and unit structs as
//! CBOR `null` (so that JSON tools see `null`), but the CBOR library reads a unit only from
//! an empty array, so a unit inside a term (`Ok(())`, a unit field, `Vec<Marker>`) would
//! not read back. [`Units`] wraps a deserializer, at every level of the value, and reads a
//! unit from `null` or `[]`; everything else passes through unchanged.
//!
//! Every `Deserialize` implementation under it sees the error type of
//! [`crate::decode_error`] rather than the CBOR library's, so that serde's description of an
//! unexpected value is never formatted with the library's defaults (see there why).

use std::fmt;

use crate::decode_error::{Failure, stash, unstash};

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};

/// A deserializer whose units (at any depth) read from `null` or `[]`.
pub(crate) struct Units<D>(pub(crate) D);

/// Passes a visitor's calls through, wrapping the deserializers and accesses it is given.
struct Wrap<V>(V);

/// Reads a unit from `null` or `[]` for the visitor inside.
struct Unit<V>(V);

/// A seed whose deserializer is wrapped.
struct Seed<S>(S);

macro_rules! forward {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
                self.0.$method(Wrap(visitor)).map_err(unstash)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Units<D> {
    type Error = Failure;

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Failure> {
        unit(self.0, visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Failure> {
        unit(self.0, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.0
            .deserialize_newtype_struct(name, Wrap(visitor))
            .map_err(unstash)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.0
            .deserialize_tuple(len, Wrap(visitor))
            .map_err(unstash)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.0
            .deserialize_tuple_struct(name, len, Wrap(visitor))
            .map_err(unstash)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.0
            .deserialize_struct(name, fields, Wrap(visitor))
            .map_err(unstash)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failure> {
        // The CBOR library reads the name only to spot its own tag types, which terms never
        // use; a constant lets the compiler drop that path, and with it the library's own
        // `invalid_type` (serde's float and string formatting, see `decode_error`).
        self.0
            .deserialize_enum("", variants, Wrap(visitor))
            .map_err(unstash)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Read a unit from `null` or `[]`: `null` as an option's none, anything else as an array
/// that must be empty. Not through the CBOR library's `deserialize_any`, which would link its
/// conversions to every integer type, and their texts (a kilobyte of every guest's data).
fn unit<'de, D: Deserializer<'de>, V: Visitor<'de>>(d: D, visitor: V) -> Result<V::Value, Failure> {
    d.deserialize_option(Unit(visitor)).map_err(|e| {
        let mut failure = unstash(e);
        // The library, finding neither `null` nor an array, says it expected an array; it
        // has already named the type it found and where.
        if let Some(found) = failure.message.strip_suffix("expected array") {
            failure.message = format!("{found}expected unit (null)");
        }
        failure
    })
}

macro_rules! pass {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.0.$method::<Failure>(v).map_err(stash)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    pass!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none::<Failure>().map_err(stash)
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit::<Failure>().map_err(stash)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Units(d)).map_err(stash)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Units(d)).map_err(stash)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Wrap(seq)).map_err(stash)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Wrap(map)).map_err(stash)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Wrap(data)).map_err(stash)
    }
}

macro_rules! refuse {
    ($($method:ident($ty:ty) => $unexpected:expr),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                Err(stash(de::Error::invalid_type($unexpected(v), &self)))
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Unit<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit::<Failure>().map_err(stash)
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit::<Failure>().map_err(stash)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V::Value, A::Error> {
        match seq.next_element::<IgnoredAny>()? {
            None => self.0.visit_unit::<Failure>().map_err(stash),
            Some(_) => Err(stash(de::Error::invalid_type(Unexpected::Seq, &self))),
        }
    }

    // Every other value is refused here, in this crate's error type: serde's defaults would
    // refuse it in the CBOR library's (see `decode_error`).
    refuse!(
        visit_bool(bool) => Unexpected::Bool,
        visit_i64(i64) => Unexpected::Signed,
        visit_u64(u64) => Unexpected::Unsigned,
        visit_f64(f64) => Unexpected::Float,
        visit_str(&str) => Unexpected::Str,
        visit_bytes(&[u8]) => Unexpected::Bytes,
    );

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<V::Value, E> {
        Err(stash(de::Error::invalid_type(
            Unexpected::Other("integer"),
            &self,
        )))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<V::Value, E> {
        Err(stash(de::Error::invalid_type(
            Unexpected::Other("integer"),
            &self,
        )))
    }

    /// Not `null`: the empty array, or else the library's error naming what it is.
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, _: D) -> Result<V::Value, D::Error> {
        Err(stash(de::Error::invalid_type(
            Unexpected::NewtypeStruct,
            &self,
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<V::Value, A::Error> {
        Err(stash(de::Error::invalid_type(Unexpected::Map, &self)))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, _: A) -> Result<V::Value, A::Error> {
        Err(stash(de::Error::invalid_type(Unexpected::Enum, &self)))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Units(d)).map_err(stash)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<A> {
    type Error = Failure;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Failure> {
        self.0.next_element_seed(Seed(seed)).map_err(unstash)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<A> {
    type Error = Failure;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Failure> {
        self.0.next_key_seed(Seed(seed)).map_err(unstash)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Failure> {
        self.0.next_value_seed(Seed(seed)).map_err(unstash)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<A> {
    type Error = Failure;
    type Variant = Wrap<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Wrap<A::Variant>), Failure> {
        let (value, variant) = self.0.variant_seed(Seed(seed)).map_err(unstash)?;
        Ok((value, Wrap(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<A> {
    type Error = Failure;

    fn unit_variant(self) -> Result<(), Failure> {
        self.0.unit_variant().map_err(unstash)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Failure> {
        self.0.newtype_variant_seed(Seed(seed)).map_err(unstash)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Failure> {
        self.0.tuple_variant(len, Wrap(visitor)).map_err(unstash)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failure> {
        self.0
            .struct_variant(fields, Wrap(visitor))
            .map_err(unstash)
    }
}
