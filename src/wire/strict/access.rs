//! serde's side of the strict decoder: the `Deserializer` trait and the sequence, map and enum
//! access it hands to visitors.

use super::*;

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = StrictError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Nil => visitor.visit_unit(),
            Head::Bool(b) => visitor.visit_bool(b),
            Head::Unsigned(n) => visitor.visit_u64(n),
            Head::Signed(n) => visitor.visit_i64(n),
            Head::F32(x) => visitor.visit_f32(x),
            Head::F64(x) => visitor.visit_f64(x),
            Head::Str(s) => visitor.visit_borrowed_str(s),
            Head::Bin(b) => visitor.visit_borrowed_bytes(b),
            Head::Array(n) => self.seq(n, visitor),
            Head::Map(n) => self.map(n, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Bool(b) => visitor.visit_bool(b),
            other => Err(wrong(&other, "a boolean")),
        }
    }

    integers!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::F32(x) => visitor.visit_f32(x),
            Head::F64(x) => visitor.visit_f64(x),
            other => Err(wrong(&other, "a float")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Str(s) => visitor.visit_borrowed_str(s),
            other => Err(wrong(&other, "a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Bin(b) => visitor.visit_borrowed_bytes(b),
            other => Err(wrong(&other, "bytes (bin)")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek_nil() {
            self.input = &self.input[1..];
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Nil => visitor.visit_unit(),
            other => Err(wrong(&other, "nil")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Array(n) => self.seq(n, visitor),
            other => Err(wrong(&other, "an array")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Array(n) if n == len => self.seq(n, visitor),
            Head::Array(n) => Err(StrictError::shape(format_args!(
                "expected an array of {len}, found one of {n}"
            ))),
            other => Err(wrong(&other, "an array")),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Map(n) => self.map(n, visitor),
            other => Err(wrong(&other, "a map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.head()? {
            Head::Map(n) => self.map(n, visitor),
            other => Err(wrong(&other, &format!("a map of {name}'s fields by name"))),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.head()? {
            Head::Str(variant) => visitor.visit_enum(Variant {
                de: self,
                name: variant,
                data: false,
            }),
            Head::Map(1) => {
                self.enter()?;
                let variant = match self.head()? {
                    Head::Str(s) => s,
                    other => return Err(wrong(&other, &format!("the name of a {name} variant"))),
                };
                let value = visitor.visit_enum(Variant {
                    de: &mut *self,
                    name: variant,
                    data: true,
                })?;
                self.depth -= 1;
                Ok(value)
            }
            other => Err(wrong(
                &other,
                &format!("a {name}: a variant name, or a map of one variant name to its data"),
            )),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Str(s) => visitor.visit_borrowed_str(s),
            other => Err(wrong(&other, "a name (string)")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The items of an array, or the entries of a map.
pub(super) struct Items<'a, 'de> {
    pub(super) de: &'a mut Deserializer<'de>,
    pub(super) left: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = StrictError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        // Each item takes at least a byte: a lying length cannot make the caller preallocate.
        Some(self.left.min(self.de.input.len()))
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = StrictError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.de.input.len() / 2))
    }
}

/// An enum variant: by name alone (`data: false`), or with its data following.
pub(super) struct Variant<'a, 'de> {
    pub(super) de: &'a mut Deserializer<'de>,
    pub(super) name: &'de str,
    pub(super) data: bool,
}

impl<'a, 'de> de::EnumAccess<'de> for Variant<'a, 'de> {
    type Error = StrictError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let name = de::value::BorrowedStrDeserializer::<StrictError>::new(self.name);
        let value = seed.deserialize(name)?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = StrictError;

    fn unit_variant(self) -> Result<()> {
        if self.data {
            return Err(StrictError::shape(format_args!(
                "variant `{}` has no data; send it as a plain string",
                self.name
            )));
        }
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        self.needs_data()?;
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.needs_data()?;
        de::Deserializer::deserialize_tuple(&mut *self.de, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.needs_data()?;
        de::Deserializer::deserialize_struct(&mut *self.de, "variant", fields, visitor)
    }
}

impl Variant<'_, '_> {
    fn needs_data(&self) -> Result<()> {
        if self.data {
            Ok(())
        } else {
            Err(StrictError::shape(format_args!(
                "variant `{}` needs data: send it as a map of its name to its data",
                self.name
            )))
        }
    }
}
