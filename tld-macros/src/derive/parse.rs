//! Checking the input of `#[derive(TldType)]` and reducing it to what the expansion needs.
//!
//! Every check runs, and every problem is reported, before anything is expanded.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{Data, DeriveInput, Ident, Member, Meta, Token, Type};

use crate::errors::Errors;
use tld_wire::key as c_ident;

/// A struct that passed every syntactic check.
pub(crate) struct Struct<'a> {
    /// The struct's name.
    pub(crate) ident: &'a Ident,
    /// The struct's fields, in declaration order.
    pub(crate) fields: Vec<Field<'a>>,
}

/// One field of a [`Struct`].
pub(crate) struct Field<'a> {
    /// How Rust names the field: `a`, or `0` in a tuple struct.
    pub(crate) member: Member,
    /// The field's name in C: the Rust name, or `_0`, `_1`, ... in a tuple struct.
    pub(crate) c_name: String,
    /// The field's type.
    pub(crate) ty: &'a Type,
    /// Where to point errors about the field as a whole: its name, or its type if unnamed.
    pub(crate) span: Span,
}

const WHY_PLAIN: &str = "BPF may write any bytes into a hint";

impl<'a> Struct<'a> {
    /// Checks `input`, reporting every problem at once.
    pub(crate) fn from_ast(input: &'a DeriveInput) -> syn::Result<Struct<'a>> {
        let mut errors = Errors::new();

        let data = match &input.data {
            Data::Struct(data) => Some(data),
            Data::Enum(data) => {
                errors.spanned(
                    data.enum_token,
                    "#[derive(TldType)] supports structs only, not enums: BPF may write any \
                     bytes into a hint, and most bytes are not a valid discriminant; use an \
                     integer field with named constants instead",
                );
                None
            }
            Data::Union(data) => {
                errors.spanned(
                    data.union_token,
                    "#[derive(TldType)] supports structs only, not unions; use a struct with a \
                     byte array, or separate fields",
                );
                None
            }
        };

        let mut fields = Vec::new();
        if let Some(data) = data {
            check_generics(input, &mut errors);
            check_repr(input, &mut errors);
            check_c_name(&input.ident, "struct name", &mut errors);
            if data.fields.is_empty() {
                errors.spanned(
                    &input.ident,
                    format!(
                        "#[derive(TldType)] needs at least one field: `{}` would be zero-sized, \
                         and C has no empty structs",
                        input.ident
                    ),
                );
            }
            for (index, (field, member)) in
                data.fields.iter().zip(data.fields.members()).enumerate()
            {
                let (c_name, span) = match &field.ident {
                    Some(ident) => {
                        check_c_name(ident, "field name", &mut errors);
                        (ident.unraw().to_string(), ident.span())
                    }
                    None => (format!("_{index}"), field.ty.span()),
                };
                check_field_type(&field.ty, &mut errors);
                if let Some((eq, _)) = &field.default {
                    errors.spanned(
                        eq,
                        "#[derive(TldType)] does not support default field values",
                    );
                }
                fields.push(Field {
                    member,
                    c_name,
                    ty: &field.ty,
                    span,
                });
            }
        }

        errors.finish()?;
        Ok(Struct {
            ident: &input.ident,
            fields,
        })
    }
}

fn check_generics(input: &DeriveInput, errors: &mut Errors) {
    let generics = &input.generics;
    if !generics.params.is_empty() {
        errors.spanned(
            generics,
            "#[derive(TldType)] does not support generic parameters or lifetimes: the generated \
             C header needs one concrete layout per struct",
        );
    } else if let Some(where_clause) = &generics.where_clause {
        errors.spanned(
            where_clause,
            "#[derive(TldType)] does not support where clauses",
        );
    }
}

/// Requires `#[repr(C)]` or `#[repr(transparent)]`, and no `packed` or `align`.
fn check_repr(input: &DeriveInput, errors: &mut Errors) {
    let mut c_layout = false;
    for attr in &input.attrs {
        if !attr.path().is_ident("repr") {
            continue;
        }
        let items = match attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(items) => items,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        for item in &items {
            let path = item.path();
            if path.is_ident("C") || path.is_ident("transparent") {
                c_layout = true;
            } else if path.is_ident("packed") {
                errors.spanned(
                    item,
                    "#[derive(TldType)] does not support #[repr(packed)]: fields would lose the \
                     natural alignment that C and BPF expect; reorder the fields or add \
                     explicit padding fields instead",
                );
            } else if path.is_ident("align") {
                errors.spanned(
                    item,
                    "#[derive(TldType)] does not support #[repr(align(N))]: a hint is aligned to \
                     at most 8 bytes, and any extra alignment adds padding; add explicit padding \
                     fields instead",
                );
            }
        }
    }
    if !c_layout {
        errors.spanned(
            &input.ident,
            format!(
                "#[derive(TldType)] needs #[repr(C)] (or #[repr(transparent)]) on `{}`: BPF and \
                 the generated C header read the struct with C's layout, and Rust's default \
                 layout may reorder fields",
                input.ident
            ),
        );
    }
}

fn check_c_name(ident: &Ident, what: &str, errors: &mut Errors) {
    let name = ident.unraw().to_string();
    if let Err(invalid) = c_ident::check_c_name(&name) {
        errors.spanned(
            ident,
            format!(
                "{}; #[derive(TldType)] declares this struct in C",
                invalid.describe(what, &name)
            ),
        );
    }
}

/// Rejects, with an explanation, field types that can never be hint data. Anything else is left
/// to the `Pod + TldType` assertion in the expansion.
fn check_field_type(ty: &Type, errors: &mut Errors) {
    match ty {
        Type::Array(array) => check_field_type(&array.elem, errors),
        Type::Paren(paren) => check_field_type(&paren.elem, errors),
        Type::Group(group) => check_field_type(&group.elem, errors),
        Type::Reference(_) => errors.spanned(
            ty,
            format!(
                "a TldType field cannot be a reference: {WHY_PLAIN}, which would forge the \
                 address; and C cannot follow a Rust reference. Store plain data (an integer, \
                 an array, a #[derive(TldType)] struct) instead"
            ),
        ),
        Type::Ptr(_) => errors.spanned(
            ty,
            format!(
                "a TldType field cannot be a raw pointer: {WHY_PLAIN}, and a hint shared with \
                 the kernel must not carry addresses. Store an integer (u64) instead if you \
                 must pass one"
            ),
        ),
        Type::FnPtr(_) => errors.spanned(
            ty,
            format!(
                "a TldType field cannot be a function pointer: {WHY_PLAIN}, and calling a \
                 forged function pointer is undefined behavior"
            ),
        ),
        Type::Slice(_) => errors.spanned(
            ty,
            "a TldType field cannot be a slice: a hint has a fixed size; use an array `[T; N]`",
        ),
        Type::Tuple(tuple) if tuple.elems.is_empty() => errors.spanned(
            ty,
            "a TldType field cannot be `()`: it is zero-sized and has no C spelling",
        ),
        Type::Tuple(_) => errors.spanned(
            ty,
            "a TldType field cannot be a tuple: tuples have no guaranteed layout and no C \
             spelling; use a #[derive(TldType)] struct or an array",
        ),
        Type::Never(_) | Type::TraitObject(_) | Type::ImplTrait(_) | Type::Infer(_) => {
            errors.spanned(ty, "this type cannot be a TldType field");
        }
        Type::Path(path) if path.qself.is_none() => {
            if let Some(segment) = path.path.segments.last() {
                if let Some(message) = known_bad_type(&segment.ident.to_string()) {
                    errors.spanned(ty, message);
                }
            }
        }
        _ => {}
    }
}

/// Explains why a well-known type, named by the last segment of its path, cannot be a field.
fn known_bad_type(name: &str) -> Option<String> {
    let message = match name {
        "bool" => format!(
            "a TldType field cannot be `bool`: {WHY_PLAIN}; a `bool` field would make get() \
             unsound (only 0 and 1 are valid `bool`s). Use u8"
        ),
        "char" => format!(
            "a TldType field cannot be `char`: {WHY_PLAIN}; a `char` field would make get() \
             unsound (not every u32 is a valid `char`). Use u32"
        ),
        "str" => "a TldType field cannot be `str`: a hint has a fixed size; use a byte array \
                  `[u8; N]`"
            .to_owned(),
        "u128" | "i128" => format!(
            "a TldType field cannot be `{name}`: its alignment is 16, and a hint is aligned to \
             at most 8 bytes; use `[u64; 2]`"
        ),
        "Option" | "NonNull" | "NonZero" => format!(
            "a TldType field cannot be `{name}`: {WHY_PLAIN}, and not every bit pattern is a \
             valid `{name}`, which would make get() unsound"
        ),
        _ if name.starts_with("NonZero") => format!(
            "a TldType field cannot be `{name}`: {WHY_PLAIN}, and zero is not a valid \
             `{name}`, which would make get() unsound; use the plain integer type"
        ),
        "Box" | "Vec" | "String" | "Rc" | "Arc" => format!(
            "a TldType field cannot be `{name}`: it owns heap memory through a pointer, and \
             {WHY_PLAIN}; use plain data (an integer, an array, a #[derive(TldType)] struct)"
        ),
        "Cell" | "RefCell" | "UnsafeCell" | "Mutex" | "RwLock" => format!(
            "a TldType field cannot be `{name}`: hints are copied in and out by value, so \
             interior mutability has no meaning there; use the plain type"
        ),
        _ if name.starts_with("Atomic") => format!(
            "a TldType field cannot be `{name}`: hints are copied in and out by value with \
             get() and set(); use the plain integer type"
        ),
        "PhantomData" | "PhantomPinned" => format!(
            "a TldType field cannot be `{name}`: zero-sized fields have no C spelling; remove it"
        ),
        _ => return None,
    };
    Some(message)
}
