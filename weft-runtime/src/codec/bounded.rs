//! A serde `Deserializer` adapter that bounds what stored bytes can make a decode do: bincode's
//! deserializer goes in, the same deserializer comes out with every claimed length checked
//! against the input before anything is allocated, and with nesting depth limited.
//!
//! bincode 2 in serde mode trusts length prefixes (read against bincode 2.0.1's source):
//! - `String` and byte buffers go through `deserialize_string`/`deserialize_byte_buf`, which
//!   allocate `vec![0; claimed length]` before reading. With no configured limit
//!   `claim_container_read` checks nothing, so a claim of 2^40 aborts the process and one above
//!   `isize::MAX` panics with "capacity overflow". A configured limit is a compile-time constant
//!   counted in in-memory sizes (a one-byte varint claims 8), so it cannot be the input's length.
//!   Here both are redirected to `deserialize_str`/`deserialize_bytes`, which borrow from the
//!   input slice (bincode checks the claim against the bytes left) and copy only what is there.
//! - Sequences and maps hand their claimed length to the visitor as `size_hint`; serde
//!   preallocates up to 1 MiB from it, then loops the claimed number of times. Elements of a
//!   zero-sized type read no bytes, so a claim of 2^60 `()` loops for ever. Here every element of
//!   a length-prefixed sequence or map spends one unit of a budget of the input's length plus
//!   [`ZERO_SIZED_ALLOWANCE`]: any element that reads a byte owns at least one byte of the input
//!   (its tag, prefix or value), so valid data never runs out, and a claim above what is left is
//!   refused before the visitor sees it. `size_hint` is capped to the budget.
//! - Recursive types (a group whose branch is a group, a user's tree) recurse once per level;
//!   deep enough bytes overflow the stack, an abort. Here nesting stops at [`MAX_DEPTH`].
//!
//! Fields of structs, tuples and variants are fixed by the type, not by the bytes, and spend
//! nothing.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// How deeply values may nest: enough for any record the engine writes, far below a stack
/// overflow on a 2 MiB thread (tokio's worker stack).
pub const MAX_DEPTH: usize = 128;

/// How many elements of zero-sized types (which read no bytes) a decode may hold beyond the
/// input's length: a `Vec<()>` longer than its input plus this is refused.
pub const ZERO_SIZED_ALLOWANCE: usize = 1024;

/// A limit the bytes broke, kept so the caller can report it as a typed error (bincode turns
/// every error of a visitor into its own type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Violation {
    /// A length prefix claimed more elements than the input can hold.
    Length {
        /// The claimed number of elements.
        claimed: usize,
        /// How many the rest of the input could hold.
        available: usize,
    },
    /// Values nested deeper than [`MAX_DEPTH`].
    Depth,
}

/// The budget of one decode, shared by every level of it.
pub(super) struct Limits {
    elements: Cell<usize>,
    depth: Cell<usize>,
    violation: Cell<Option<Violation>>,
}

impl Limits {
    /// The limits for decoding `input_len` bytes.
    pub(super) fn for_input(input_len: usize) -> Self {
        Limits {
            elements: Cell::new(input_len.saturating_add(ZERO_SIZED_ALLOWANCE)),
            depth: Cell::new(0),
            violation: Cell::new(None),
        }
    }

    /// The limit the bytes broke, if the decode failed on one.
    pub(super) fn violation(&self) -> Option<Violation> {
        self.violation.get()
    }

    fn refuse<E: de::Error>(&self, violation: Violation) -> E {
        self.violation.set(Some(violation));
        match violation {
            Violation::Length { claimed, available } => E::custom(format_args!(
                "a length prefix claims {claimed} elements, but the input holds at most {available}"
            )),
            Violation::Depth => E::custom(format_args!("values nest deeper than {MAX_DEPTH}")),
        }
    }

    /// Checks a claimed length against the budget left, without spending it.
    fn check_claim<E: de::Error>(&self, claimed: usize) -> Result<(), E> {
        let available = self.elements.get();
        if claimed > available {
            return Err(self.refuse(Violation::Length { claimed, available }));
        }
        Ok(())
    }

    /// Spends one element of the budget.
    fn spend<E: de::Error>(&self) -> Result<(), E> {
        self.check_claim(1)?;
        self.elements.set(self.elements.get() - 1);
        Ok(())
    }

    /// Enters one level of nesting; the guard leaves it when dropped.
    fn enter<E: de::Error>(&self) -> Result<DepthGuard<'_>, E> {
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            return Err(self.refuse(Violation::Depth));
        }
        self.depth.set(depth);
        Ok(DepthGuard(self))
    }
}

struct DepthGuard<'l>(&'l Limits);

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.0.depth.set(self.0.depth.get() - 1);
    }
}

/// Wraps a seed so that the deserializer it is given is bounded.
pub(super) struct Seed<'l, T> {
    pub(super) limits: &'l Limits,
    pub(super) inner: T,
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T::Value, D::Error> {
        self.inner.deserialize(De {
            inner: deserializer,
            limits: self.limits,
        })
    }
}

/// A bounded deserializer.
struct De<'l, D> {
    inner: D,
    limits: &'l Limits,
}

impl<'l, D> De<'l, D> {
    fn visitor<V>(&self, inner: V, counted: bool) -> Vis<'l, V> {
        Vis {
            inner,
            limits: self.limits,
            counted,
        }
    }
}

/// Forwards `deserialize_*` methods that take only a visitor, one nesting level deeper.
macro_rules! forward {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            let _level = self.limits.enter::<D::Error>()?;
            let visitor = self.visitor(visitor, false);
            self.inner.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for De<'_, D> {
    type Error = D::Error;

    forward! {
        deserialize_any deserialize_bool
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_bytes
        deserialize_option deserialize_unit deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        // Borrowed: the claimed length is checked against the input before any copy.
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let _level = self.limits.enter::<D::Error>()?;
        let visitor = self.visitor(visitor, true);
        self.inner.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let _level = self.limits.enter::<D::Error>()?;
        let visitor = self.visitor(visitor, true);
        self.inner.deserialize_map(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = self.limits.enter::<D::Error>()?;
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = self.limits.enter::<D::Error>()?;
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = self.limits.enter::<D::Error>()?;
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = self.limits.enter::<D::Error>()?;
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = self.limits.enter::<D::Error>()?;
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = self.limits.enter::<D::Error>()?;
        let visitor = self.visitor(visitor, false);
        self.inner.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor whose nested deserializers and accessors are bounded. `counted`: it visits a
/// length-prefixed sequence or map, whose elements spend the budget.
struct Vis<'l, V> {
    inner: V,
    limits: &'l Limits,
    counted: bool,
}

/// Forwards `visit_*` methods of plain values.
macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Vis<'_, V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(formatter)
    }

    forward_visit! {
        visit_bool(bool)
        visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64) visit_i128(i128)
        visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64) visit_u128(u128)
        visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
        visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(De {
            inner: deserializer,
            limits: self.limits,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(De {
            inner: deserializer,
            limits: self.limits,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let left = seq.size_hint();
        if self.counted {
            // bincode always knows the claimed length; refuse it before serde preallocates.
            self.limits.check_claim::<A::Error>(left.unwrap_or(0))?;
        }
        self.inner.visit_seq(Seq {
            inner: seq,
            limits: self.limits,
            counted: self.counted,
            left,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let left = map.size_hint();
        if self.counted {
            self.limits.check_claim::<A::Error>(left.unwrap_or(0))?;
        }
        self.inner.visit_map(Map {
            inner: map,
            limits: self.limits,
            counted: self.counted,
            left,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Enum {
            inner: data,
            limits: self.limits,
        })
    }
}

/// Spends one element of the budget for a counted accessor with `left` claimed elements, unless
/// none are left (the call that ends the sequence reads nothing).
fn spend_element<E: de::Error>(
    limits: &Limits,
    counted: bool,
    left: &mut Option<usize>,
) -> Result<(), E> {
    if let Some(n) = left {
        if *n == 0 {
            return Ok(());
        }
        *n -= 1;
    }
    if counted {
        limits.spend::<E>()?;
    }
    Ok(())
}

struct Seq<'l, A> {
    inner: A,
    limits: &'l Limits,
    counted: bool,
    left: Option<usize>,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        spend_element::<A::Error>(self.limits, self.counted, &mut self.left)?;
        self.inner.next_element_seed(Seed {
            limits: self.limits,
            inner: seed,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        cap_hint(self.inner.size_hint(), self.limits, self.counted)
    }
}

struct Map<'l, A> {
    inner: A,
    limits: &'l Limits,
    counted: bool,
    left: Option<usize>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        spend_element::<A::Error>(self.limits, self.counted, &mut self.left)?;
        self.inner.next_key_seed(Seed {
            limits: self.limits,
            inner: seed,
        })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Seed {
            limits: self.limits,
            inner: seed,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        cap_hint(self.inner.size_hint(), self.limits, self.counted)
    }
}

/// The size hint a visitor preallocates from: never more than the budget left.
fn cap_hint(hint: Option<usize>, limits: &Limits, counted: bool) -> Option<usize> {
    if counted {
        hint.map(|h| h.min(limits.elements.get()))
    } else {
        hint
    }
}

struct Enum<'l, A> {
    inner: A,
    limits: &'l Limits,
}

impl<'de, 'l, A: EnumAccess<'de>> EnumAccess<'de> for Enum<'l, A> {
    type Error = A::Error;
    type Variant = Variant<'l, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(Seed {
            limits: self.limits,
            inner: seed,
        })?;
        Ok((
            value,
            Variant {
                inner: variant,
                limits: self.limits,
            },
        ))
    }
}

struct Variant<'l, A> {
    inner: A,
    limits: &'l Limits,
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(Seed {
            limits: self.limits,
            inner: seed,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let _level = self.limits.enter::<A::Error>()?;
        self.inner.tuple_variant(
            len,
            Vis {
                inner: visitor,
                limits: self.limits,
                counted: false,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let _level = self.limits.enter::<A::Error>()?;
        self.inner.struct_variant(
            fields,
            Vis {
                inner: visitor,
                limits: self.limits,
                counted: false,
            },
        )
    }
}
