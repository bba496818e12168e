//! Descriptions of hint types as C sees them.
//!
//! Every [`TldType`](crate::TldType) carries a [`CType`] in a constant. The header generator
//! (`header`, with the `codegen` feature) walks these descriptions to write C declarations
//! that match the Rust layout byte for byte.

/// The C view of a hint's type.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CType {
    /// A scalar with a C spelling such as `__u32`, `__s64`, `double` or `_Bool`.
    Scalar {
        /// The C spelling of the type.
        name: &'static str,
        /// Size in bytes.
        size: usize,
    },
    /// A fixed-size array, `elem name[len]` in C.
    Array {
        /// The element type.
        elem: &'static CType,
        /// The number of elements.
        len: usize,
    },
    /// A `#[derive(TldType)]` struct, `struct Name` in C.
    Struct(&'static CStruct),
}

/// A struct as the generated C header declares it.
#[derive(Debug, PartialEq, Eq)]
pub struct CStruct {
    /// The struct's tag: `struct <name>`.
    pub name: &'static str,
    /// The Rust path of the type, for messages.
    pub rust_path: &'static str,
    /// `size_of` the struct.
    pub size: usize,
    /// `align_of` the struct.
    pub align: usize,
    /// The fields in declaration order.
    pub fields: &'static [CField],
}

/// One field of a [`CStruct`].
#[derive(Debug, PartialEq, Eq)]
pub struct CField {
    /// The field's name (also its C name).
    pub name: &'static str,
    /// The field's type.
    pub ty: &'static CType,
    /// `offset_of` the field.
    pub offset: usize,
}

impl CType {
    /// The size in bytes of a value of this type.
    pub const fn size(&self) -> usize {
        match self {
            CType::Scalar { size, .. } => *size,
            CType::Array { elem, len } => elem.size() * *len,
            CType::Struct(s) => s.size,
        }
    }

    /// The innermost element type of nested arrays, and the array dimensions from the
    /// outermost in.
    pub fn split_array(&'static self) -> (&'static CType, Vec<usize>) {
        let mut dims = Vec::new();
        let mut ty = self;
        while let CType::Array { elem, len } = ty {
            dims.push(*len);
            ty = elem;
        }
        (ty, dims)
    }

    /// Declares `name` with this type in C, e.g. `__u8 name[16]` or `struct S name`.
    pub fn declare(&'static self, name: &str) -> String {
        let (base, dims) = self.split_array();
        let mut out = base.base_spelling();
        out.push(' ');
        out.push_str(name);
        for d in dims {
            out.push_str(&format!("[{d}]"));
        }
        out
    }

    /// The C spelling of a non-array type (`__u32`, `struct S`). Arrays give their element's.
    pub fn base_spelling(&'static self) -> String {
        match self.split_array().0 {
            CType::Scalar { name, .. } => (*name).to_string(),
            CType::Struct(s) => format!("struct {}", s.name),
            CType::Array { .. } => unreachable!("split_array strips every array level"),
        }
    }
}
