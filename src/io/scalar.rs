//! The eight PLY scalar types as Rust types, so that body decoding and
//! encoding is written once, generically, and instantiated per type and byte
//! order instead of matching on the type for every value.

use crate::cloud::{Column, ScalarKind};
use ply_rs_bw::ply::ScalarType;
use std::fmt::Debug;
use std::str::FromStr;

/// A PLY scalar type: its byte encodings, its ascii spelling and the
/// [`Column`] variant that holds it.
pub(crate) trait Scalar: Copy + Debug + FromStr {
    /// The value's bytes in a fixed-size array.
    type Bytes: AsRef<[u8]>;
    /// Decodes little-endian bytes; `bytes` has exactly the type's size.
    fn from_le_slice(bytes: &[u8]) -> Self;
    /// Decodes big-endian bytes; `bytes` has exactly the type's size.
    fn from_be_slice(bytes: &[u8]) -> Self;
    /// Encodes as little-endian bytes (the only binary encoding we write).
    fn to_le_array(self) -> Self::Bytes;
    /// The value as `f64`, which holds every value of every type exactly.
    fn to_f64(self) -> f64;
    /// Wraps values of this type in their [`Column`] variant.
    fn into_column(values: Vec<Self>) -> Column;
}

macro_rules! impl_scalar {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl Scalar for $t {
            type Bytes = [u8; size_of::<$t>()];
            fn from_le_slice(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().unwrap_or_default())
            }
            fn from_be_slice(bytes: &[u8]) -> Self {
                <$t>::from_be_bytes(bytes.try_into().unwrap_or_default())
            }
            fn to_le_array(self) -> Self::Bytes {
                self.to_le_bytes()
            }
            #[allow(clippy::useless_conversion, reason = "the identity for f64")]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            fn into_column(values: Vec<Self>) -> Column {
                Column::$variant(values)
            }
        }
    )*};
}

impl_scalar!(i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, f32 => F32, f64 => F64);

/// Evaluates `$body` with the type alias `$t` set to the Rust type of the
/// [`ScalarKind`] `$kind`: the one place that maps runtime kinds to types.
macro_rules! with_scalar_type {
    ($kind:expr, $t:ident => $body:expr) => {
        match $kind {
            $crate::cloud::ScalarKind::I8 => {
                type $t = i8;
                $body
            }
            $crate::cloud::ScalarKind::U8 => {
                type $t = u8;
                $body
            }
            $crate::cloud::ScalarKind::I16 => {
                type $t = i16;
                $body
            }
            $crate::cloud::ScalarKind::U16 => {
                type $t = u16;
                $body
            }
            $crate::cloud::ScalarKind::I32 => {
                type $t = i32;
                $body
            }
            $crate::cloud::ScalarKind::U32 => {
                type $t = u32;
                $body
            }
            $crate::cloud::ScalarKind::F32 => {
                type $t = f32;
                $body
            }
            $crate::cloud::ScalarKind::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}
pub(crate) use with_scalar_type;

/// A byte order of binary PLY bodies, as a type so that the decoder is
/// monomorphised per order rather than branching per value.
pub(crate) trait ByteOrder {
    /// Decodes one value from exactly `size_of::<T>()` bytes.
    fn read<T: Scalar>(bytes: &[u8]) -> T;
}

/// `binary_little_endian`, and the packed records of ascii bodies.
pub(crate) enum LittleEndian {}

/// `binary_big_endian`.
pub(crate) enum BigEndian {}

impl ByteOrder for LittleEndian {
    fn read<T: Scalar>(bytes: &[u8]) -> T {
        T::from_le_slice(bytes)
    }
}

impl ByteOrder for BigEndian {
    fn read<T: Scalar>(bytes: &[u8]) -> T {
        T::from_be_slice(bytes)
    }
}

/// Bytes one value of `kind` takes in a binary body.
pub(crate) fn size_of_kind(kind: ScalarKind) -> usize {
    with_scalar_type!(kind, T => size_of::<T>())
}

/// True for `float` and `double`, which cannot count list items.
pub(crate) fn is_float(kind: ScalarKind) -> bool {
    matches!(kind, ScalarKind::F32 | ScalarKind::F64)
}

/// The [`ScalarKind`] of a header type (either spelling, e.g. `int8`/`char`).
pub(crate) fn kind_of(scalar: &ScalarType) -> ScalarKind {
    match scalar {
        ScalarType::Char => ScalarKind::I8,
        ScalarType::UChar => ScalarKind::U8,
        ScalarType::Short => ScalarKind::I16,
        ScalarType::UShort => ScalarKind::U16,
        ScalarType::Int => ScalarKind::I32,
        ScalarType::UInt => ScalarKind::U32,
        ScalarType::Float => ScalarKind::F32,
        ScalarType::Double => ScalarKind::F64,
    }
}

/// The header type written for a [`ScalarKind`].
pub(crate) fn ply_type(kind: ScalarKind) -> ScalarType {
    match kind {
        ScalarKind::I8 => ScalarType::Char,
        ScalarKind::U8 => ScalarType::UChar,
        ScalarKind::I16 => ScalarType::Short,
        ScalarKind::U16 => ScalarType::UShort,
        ScalarKind::I32 => ScalarType::Int,
        ScalarKind::U32 => ScalarType::UInt,
        ScalarKind::F32 => ScalarType::Float,
        ScalarKind::F64 => ScalarType::Double,
    }
}

/// The values of the field at `offset` in each `stride`-byte record of
/// `block`, decoded in byte order `O`.
pub(crate) fn fields<T: Scalar, O: ByteOrder>(
    block: &[u8],
    stride: usize,
    offset: usize,
) -> impl Iterator<Item = T> + '_ {
    block
        .chunks_exact(stride)
        .map(move |record| O::read(&record[offset..offset + size_of::<T>()]))
}

/// Appends the values of the field at `offset` of each record of `block`
/// to `values` (see [`fields`]).
pub(crate) fn extend_fields<T: Scalar, O: ByteOrder>(
    values: &mut Vec<T>,
    block: &[u8],
    stride: usize,
    offset: usize,
) {
    values.extend(fields::<T, O>(block, stride, offset));
}

/// Stores `values` little-endian at `offset` of consecutive `stride`-byte
/// records of `block`: the inverse of [`fields`].
pub(crate) fn put_fields<T: Scalar>(block: &mut [u8], stride: usize, offset: usize, values: &[T]) {
    for (record, value) in block.chunks_exact_mut(stride).zip(values) {
        record[offset..offset + size_of::<T>()].copy_from_slice(value.to_le_array().as_ref());
    }
}

/// Parses an ascii token as `kind` and stores it little-endian in `slot`
/// (which has the kind's size); false when the token is not such a number.
pub(crate) fn parse_into(kind: ScalarKind, token: &str, slot: &mut [u8]) -> bool {
    with_scalar_type!(kind, T => token
        .parse::<T>()
        .map(|value| slot.copy_from_slice(value.to_le_array().as_ref()))
        .is_ok())
}

/// Parses an ascii token as `kind` and returns it as `f64` (list lengths).
pub(crate) fn parse_f64(kind: ScalarKind, token: &str) -> Option<f64> {
    with_scalar_type!(kind, T => token.parse::<T>().ok().map(T::to_f64))
}

/// Decodes one value of `kind` in byte order `O` as `f64` (list lengths).
pub(crate) fn decode_f64<O: ByteOrder>(kind: ScalarKind, bytes: &[u8]) -> f64 {
    with_scalar_type!(kind, T => O::read::<T>(bytes).to_f64())
}

/// An empty column of `kind` with room for `capacity` values.
pub(crate) fn empty_column(kind: ScalarKind, capacity: usize) -> Column {
    with_scalar_type!(kind, T => T::into_column(Vec::with_capacity(capacity)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_header_type() {
        for kind in [
            ScalarKind::I8,
            ScalarKind::U8,
            ScalarKind::I16,
            ScalarKind::U16,
            ScalarKind::I32,
            ScalarKind::U32,
            ScalarKind::F32,
            ScalarKind::F64,
        ] {
            assert_eq!(kind_of(&ply_type(kind)), kind);
            assert_eq!(empty_column(kind, 4).kind(), kind);
        }
    }

    #[test]
    fn fields_decode_both_byte_orders_at_their_offsets() {
        // Two records of (u8, i16): the i16 at offset 1.
        let block = [9, 0x01, 0x02, 7, 0xff, 0xfe];
        let le: Vec<i16> = fields::<i16, LittleEndian>(&block, 3, 1).collect();
        let be: Vec<i16> = fields::<i16, BigEndian>(&block, 3, 1).collect();
        assert_eq!(le, [0x0201, -257]);
        assert_eq!(be, [0x0102, -2]);
        let mut out = [0u8; 6];
        put_fields(&mut out, 3, 1, &le);
        put_fields(&mut out, 3, 0, &[9u8, 7]);
        assert_eq!(out, block);
    }

    #[test]
    fn parse_into_rejects_out_of_range_and_garbage() {
        let mut slot = [0u8; 1];
        assert!(parse_into(ScalarKind::U8, "255", &mut slot));
        assert_eq!(slot, [255]);
        assert!(!parse_into(ScalarKind::U8, "256", &mut slot));
        assert!(!parse_into(ScalarKind::I8, "x", &mut slot));
        assert_eq!(parse_f64(ScalarKind::F32, "inf"), Some(f64::INFINITY));
    }
}
