//! Serde's accesses to an array's items, a map's entries and an enum's variant.

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

use super::Deserializer;
use crate::decode_error::Failure;

/// The items of an array, or the entries of a map, still to read.
pub(super) struct Items<'a, 'de> {
    pub(super) de: &'a mut Deserializer<'de>,
    /// How many (`None`: until a break).
    pub(super) left: Option<u64>,
}

impl Items<'_, '_> {
    /// Whether another item follows; an indefinite one's break is consumed.
    fn more(&mut self) -> Result<bool, Failure> {
        match self.left {
            None => Ok(!self.de.at_break()?),
            Some(n) => Ok(n > 0),
        }
    }

    fn count(&mut self) {
        if let Some(n) = &mut self.left {
            *n = n.saturating_sub(1);
        }
    }
}

impl<'de> SeqAccess<'de> for Items<'_, 'de> {
    type Error = Failure;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Failure> {
        if !self.more()? {
            return Ok(None);
        }
        let value = seed.deserialize(&mut *self.de)?;
        self.count();
        Ok(Some(value))
    }

    fn size_hint(&self) -> Option<usize> {
        self.left.and_then(|n| usize::try_from(n).ok())
    }
}

impl<'de> MapAccess<'de> for Items<'_, 'de> {
    type Error = Failure;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Failure> {
        if !self.more()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Failure> {
        let value = seed.deserialize(&mut *self.de)?;
        self.count();
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        self.left.and_then(|n| usize::try_from(n).ok())
    }
}

impl<'de> EnumAccess<'de> for &mut Deserializer<'de> {
    type Error = Failure;
    type Variant = Self;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self), Failure> {
        let variant = seed.deserialize(&mut *self)?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for &mut Deserializer<'de> {
    type Error = Failure;

    fn unit_variant(self) -> Result<(), Failure> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Failure> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Failure> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Failure> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}
