//! The [`TldType`] trait: which Rust types can be hints.

use crate::declare::c_type::CType;

/// A type that can live in task local data, where BPF programs read and write it.
///
/// A BPF program may write any bytes into a hint, so reading a hint back must be sound for every
/// bit pattern. The trait therefore splits a type into the value users see (`Self`) and the
/// bytes that are stored ([`TldType::Raw`], a [`bytemuck::Pod`] type). For plain data the two are
/// the same type and the conversions are the identity. For `bool`, the stored byte is a `u8` and
/// any non-zero byte reads back as `true`.
///
/// Implemented for the integer types (not `u128`/`i128`, whose alignment is 16), `f32`, `f64`,
/// `bool`, arrays of any `TldType`, and structs with `#[derive(TldType)]`.
///
/// # Safety
/// An implementation promises all of this:
/// - `Self::Raw` has the same size and alignment as `Self`;
/// - every byte of every `Self` value is initialized (no padding), and those bytes are the bytes
///   of `self.into_raw()`;
/// - [`TldType::C_TYPE`] describes the layout of `Self` exactly.
///
/// `#[derive(TldType)]` checks all of these at compile time; prefer it to a hand-written impl.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a task local data hint",
    label = "not a `TldType`",
    note = "hints can be integers, f32, f64, bool, arrays of hints, and #[derive(TldType)] structs"
)]
pub unsafe trait TldType: Copy + Send + Sync + 'static {
    /// The stored representation. Any bit pattern is a valid `Raw`.
    type Raw: bytemuck::Pod;

    /// How the generated C header spells this type.
    const C_TYPE: &'static CType;

    /// Converts a value into its stored form.
    fn into_raw(self) -> Self::Raw;

    /// Converts stored bytes, possibly written by BPF, into a value.
    fn from_raw(raw: Self::Raw) -> Self;
}

macro_rules! plain_scalars {
    ($($ty:ty => $c:literal),* $(,)?) => {$(
        // SAFETY: a primitive number is its own raw form, has no padding, and the C type named
        // has the same size (checked below) and alignment on every 64-bit Linux target.
        unsafe impl TldType for $ty {
            type Raw = $ty;
            const C_TYPE: &'static CType = &CType::Scalar {
                name: $c,
                size: core::mem::size_of::<$ty>(),
            };
            #[inline(always)]
            fn into_raw(self) -> Self::Raw {
                self
            }
            #[inline(always)]
            fn from_raw(raw: Self::Raw) -> Self {
                raw
            }
        }
    )*};
}

plain_scalars! {
    u8 => "__u8", u16 => "__u16", u32 => "__u32", u64 => "__u64",
    i8 => "__s8", i16 => "__s16", i32 => "__s32", i64 => "__s64",
    f32 => "float", f64 => "double",
}

#[cfg(target_pointer_width = "64")]
plain_scalars! { usize => "__u64", isize => "__s64" }

// SAFETY: `bool` and `u8` have the same size and alignment; `true`/`false` are the bytes 1/0,
// which are what `into_raw` returns. `from_raw` accepts every byte, so BPF cannot make `get()`
// produce an invalid `bool`.
unsafe impl TldType for bool {
    type Raw = u8;
    const C_TYPE: &'static CType = &CType::Scalar {
        name: "_Bool",
        size: 1,
    };
    #[inline(always)]
    fn into_raw(self) -> u8 {
        self as u8
    }
    #[inline(always)]
    fn from_raw(raw: u8) -> Self {
        raw != 0
    }
}

// SAFETY: an array has no padding between elements; `[T::Raw; N]` has the size and alignment of
// `[T; N]` because `T::Raw` has those of `T`, and the element-wise conversion keeps each
// element's bytes.
unsafe impl<T: TldType, const N: usize> TldType for [T; N] {
    type Raw = [T::Raw; N];
    const C_TYPE: &'static CType = &CType::Array {
        elem: T::C_TYPE,
        len: N,
    };
    #[inline(always)]
    fn into_raw(self) -> Self::Raw {
        self.map(T::into_raw)
    }
    #[inline(always)]
    fn from_raw(raw: Self::Raw) -> Self {
        raw.map(T::from_raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_spellings() {
        assert_eq!(u32::C_TYPE.declare("x"), "__u32 x");
        assert_eq!(<[[i64; 3]; 2]>::C_TYPE.declare("m"), "__s64 m[2][3]");
        assert_eq!(<[bool; 4]>::C_TYPE.declare("b"), "_Bool b[4]");
        assert_eq!(<[u8; 1000]>::C_TYPE.size(), 1000);
    }

    #[test]
    fn bool_reads_any_byte() {
        assert!(bool::from_raw(7));
        assert!(!bool::from_raw(0));
        assert_eq!(<[bool; 2]>::from_raw([0, 200]), [false, true]);
    }
}
