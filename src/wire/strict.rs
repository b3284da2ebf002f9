//! Strict decoding of greenroom's own frames (requests, responses, hellos).
//!
//! `rmp_serde` is lenient in ways a hostile peer can use: it accepts an enum variant by its
//! integer index (the two bytes `06 ff` decode as the seventh request variant), a struct written
//! as an array, and ignores bytes after the value. This deserializer accepts only the documented
//! named form:
//!
//! - an enum is the string of a unit variant's name, or a one-entry map from a variant's name to
//!   its data; never an integer;
//! - a struct is a map keyed by field *names* (strings); fields it does not know are skipped, so
//!   a newer sender may add fields;
//! - bytes are `bin`, text is `str` (valid UTF-8), and no `ext` type is accepted;
//! - nesting is limited to [`MAX_DEPTH`], and nothing may follow the value.
//!
//! Errors say whether the *shape* of the frame was wrong ([`Fault::Shape`]: the frame is not a
//! greenroom frame at all) or a *value* inside a well-formed frame was refused
//! ([`Fault::Value`]: an address that does not parse, say), so that a caller can close the
//! connection for the first and only refuse the request for the second.

use std::fmt;

use rmp::Marker;
use serde::de::{self, DeserializeSeed, Visitor};

/// How deeply arrays and maps may nest.
pub const MAX_DEPTH: usize = 32;

/// What was wrong with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The bytes are not the documented form of the type (wrong MessagePack type, integer enum
    /// index, unknown variant, missing field, trailing bytes, too deep...).
    Shape,
    /// The form is right but a value was refused by its type (an address that does not parse).
    Value,
}

/// A strict decoding error.
#[derive(Clone, Debug)]
pub struct StrictError {
    /// Shape or value.
    pub fault: Fault,
    /// What was wrong.
    pub message: String,
}

impl StrictError {
    fn shape(message: impl fmt::Display) -> StrictError {
        StrictError {
            fault: Fault::Shape,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StrictError {}

impl de::Error for StrictError {
    /// Called by a type's own `Deserialize` when it refuses a value it was given.
    fn custom<T: fmt::Display>(msg: T) -> StrictError {
        StrictError {
            fault: Fault::Value,
            message: msg.to_string(),
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> StrictError {
        StrictError::shape(format_args!("invalid type: {unexp}, expected {exp}"))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> StrictError {
        StrictError::shape(format_args!("invalid value: {unexp}, expected {exp}"))
    }

    fn invalid_length(len: usize, exp: &dyn de::Expected) -> StrictError {
        StrictError::shape(format_args!("invalid length {len}, expected {exp}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> StrictError {
        StrictError::shape(format_args!(
            "unknown variant `{variant}`, expected one of {}",
            expected.join(", ")
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> StrictError {
        StrictError::shape(format_args!(
            "unknown field `{field}`, expected one of {}",
            expected.join(", ")
        ))
    }

    fn missing_field(field: &'static str) -> StrictError {
        StrictError::shape(format_args!("missing field `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> StrictError {
        StrictError::shape(format_args!("duplicate field `{field}`"))
    }
}

type Result<T> = std::result::Result<T, StrictError>;

/// Decode exactly one `T` from `bytes`, strictly; nothing may follow it.
pub fn from_slice<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T> {
    let mut de = Deserializer {
        input: bytes,
        depth: 0,
    };
    let value = T::deserialize(&mut de)?;
    if !de.input.is_empty() {
        return Err(StrictError::shape(format_args!(
            "{} bytes follow the value",
            de.input.len()
        )));
    }
    Ok(value)
}

/// Skip one whole MessagePack item at the front of `input` (an unknown field's value), with the
/// same limits as [`from_slice`].
pub fn skip(input: &mut &[u8]) -> Result<()> {
    let mut de = Deserializer { input, depth: 0 };
    de.skip()?;
    *input = de.input;
    Ok(())
}

/// One MessagePack item's head: a scalar, or the length of a container whose items follow.
enum Head<'de> {
    Nil,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    F32(f32),
    F64(f64),
    Str(&'de str),
    Bin(&'de [u8]),
    Array(usize),
    Map(usize),
}

impl Head<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Head::Nil => "nil",
            Head::Bool(_) => "a boolean",
            Head::Unsigned(_) | Head::Signed(_) => "an integer",
            Head::F32(_) | Head::F64(_) => "a float",
            Head::Str(_) => "a string",
            Head::Bin(_) => "bytes",
            Head::Array(_) => "an array",
            Head::Map(_) => "a map",
        }
    }
}

struct Deserializer<'de> {
    input: &'de [u8],
    depth: usize,
}

impl<'de> Deserializer<'de> {
    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        if self.input.len() < n {
            return Err(StrictError::shape("the frame ends inside a value"));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn be(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn peek_nil(&self) -> bool {
        self.input.first() == Some(&0xc0)
    }

    /// Read the next item's head. Strings and bytes are consumed whole; a container's items are
    /// left for the caller.
    fn head(&mut self) -> Result<Head<'de>> {
        let marker = Marker::from_u8(self.take(1)?[0]);
        Ok(match marker {
            Marker::Null => Head::Nil,
            Marker::True => Head::Bool(true),
            Marker::False => Head::Bool(false),
            Marker::FixPos(n) => Head::Unsigned(n as u64),
            Marker::FixNeg(n) => Head::Signed(n as i64),
            Marker::U8 => Head::Unsigned(self.be(1)?),
            Marker::U16 => Head::Unsigned(self.be(2)?),
            Marker::U32 => Head::Unsigned(self.be(4)?),
            Marker::U64 => Head::Unsigned(self.be(8)?),
            Marker::I8 => Head::Signed(self.be(1)? as u8 as i8 as i64),
            Marker::I16 => Head::Signed(self.be(2)? as u16 as i16 as i64),
            Marker::I32 => Head::Signed(self.be(4)? as u32 as i32 as i64),
            Marker::I64 => Head::Signed(self.be(8)? as i64),
            Marker::F32 => Head::F32(f32::from_bits(self.be(4)? as u32)),
            Marker::F64 => Head::F64(f64::from_bits(self.be(8)?)),
            Marker::FixStr(n) => self.str(n as usize)?,
            Marker::Str8 => self.len_then(1, Self::str)?,
            Marker::Str16 => self.len_then(2, Self::str)?,
            Marker::Str32 => self.len_then(4, Self::str)?,
            Marker::Bin8 => self.len_then(1, Self::bin)?,
            Marker::Bin16 => self.len_then(2, Self::bin)?,
            Marker::Bin32 => self.len_then(4, Self::bin)?,
            Marker::FixArray(n) => Head::Array(n as usize),
            Marker::Array16 => Head::Array(self.be(2)? as usize),
            Marker::Array32 => Head::Array(self.be(4)? as usize),
            Marker::FixMap(n) => Head::Map(n as usize),
            Marker::Map16 => Head::Map(self.be(2)? as usize),
            Marker::Map32 => Head::Map(self.be(4)? as usize),
            Marker::Reserved => return Err(StrictError::shape("the reserved byte 0xc1")),
            _ => return Err(StrictError::shape("a MessagePack ext value")),
        })
    }

    fn len_then(
        &mut self,
        width: usize,
        then: fn(&mut Self, usize) -> Result<Head<'de>>,
    ) -> Result<Head<'de>> {
        let len = self.be(width)? as usize;
        then(self, len)
    }

    fn str(&mut self, len: usize) -> Result<Head<'de>> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(Head::Str)
            .map_err(|_| StrictError::shape("a string that is not UTF-8"))
    }

    fn bin(&mut self, len: usize) -> Result<Head<'de>> {
        self.take(len).map(Head::Bin)
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(StrictError::shape(format_args!(
                "values nested more than {MAX_DEPTH} deep"
            )));
        }
        Ok(())
    }

    /// Skip one whole item.
    fn skip(&mut self) -> Result<()> {
        match self.head()? {
            Head::Array(n) => {
                self.enter()?;
                for _ in 0..n {
                    self.skip()?;
                }
                self.depth -= 1;
            }
            Head::Map(n) => {
                self.enter()?;
                for _ in 0..n.saturating_mul(2) {
                    self.skip()?;
                }
                self.depth -= 1;
            }
            _ => {}
        }
        Ok(())
    }

    fn seq<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value> {
        self.enter()?;
        let mut access = Items {
            de: &mut *self,
            left: len,
        };
        let value = visitor.visit_seq(&mut access)?;
        let left = access.left;
        if left != 0 {
            return Err(StrictError::shape(format_args!(
                "{left} array items unused"
            )));
        }
        self.depth -= 1;
        Ok(value)
    }

    fn map<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value> {
        self.enter()?;
        let mut access = Items {
            de: &mut *self,
            left: len,
        };
        let value = visitor.visit_map(&mut access)?;
        let left = access.left;
        if left != 0 {
            return Err(StrictError::shape(format_args!(
                "{left} map entries unused"
            )));
        }
        self.depth -= 1;
        Ok(value)
    }
}

fn wrong(head: &Head<'_>, wanted: &str) -> StrictError {
    StrictError::shape(format_args!("expected {wanted}, found {}", head.describe()))
}

macro_rules! integers {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                match self.head()? {
                    Head::Unsigned(n) => visitor.visit_u64(n),
                    Head::Signed(n) => visitor.visit_i64(n),
                    other => Err(wrong(&other, "an integer")),
                }
            }
        )*
    };
}

mod access;

use access::Items;

#[cfg(test)]
mod tests;
