//! Writing the expansion of `#[derive(TldType)]`.
//!
//! For `#[repr(C)] struct S { a: A, b: B }` the output is
//!
//! ```text
//! const _: () = {
//!     // A and B are `bytemuck::Pod + TldType` (spanned at each field's type);
//!     // no padding before `b` (spanned at `b`) and none after the last field (at `S`).
//! };
//! unsafe impl bytemuck::Zeroable for S {}
//! unsafe impl bytemuck::Pod for S {}
//! unsafe impl TldType for S {
//!     type Raw = S;
//!     const C_TYPE: &'static CType = &CType::Struct(&CStruct { name: "S", .. });
//!     fn into_raw(self) -> S { self }
//!     fn from_raw(raw: S) -> S { raw }
//! }
//! ```
//!
//! Every path is absolute through `::tld_runtime`, since users depend on that crate only.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::LitStr;

use super::parse::Struct;

pub(super) fn expand(item: &Struct) -> TokenStream {
    let ident = item.ident;
    let name = ident.unraw().to_string();
    let name_lit = LitStr::new(&name, ident.span());
    let rust_path_suffix = LitStr::new(&format!("::{name}"), ident.span());

    let field_checks = item.fields.iter().map(|field| {
        let ty = field.ty;
        quote_spanned! {ty.span()=>
            __tld_field_must_be_pod_and_tld_type::<#ty>();
        }
    });

    let padding_checks = padding_checks(item);

    let c_fields = item.fields.iter().map(|field| {
        let ty = field.ty;
        let member = &field.member;
        let c_name = LitStr::new(&field.c_name, field.span);
        quote! {
            ::tld_runtime::CField {
                name: #c_name,
                ty: <#ty as ::tld_runtime::TldType>::C_TYPE,
                offset: ::core::mem::offset_of!(#ident, #member),
            }
        }
    });

    // The `unsafe impl`s below rely on the checks in the `const _` block before them:
    //
    // SAFETY (Zeroable, Pod): the derive accepted only `#[repr(C)]` or `#[repr(transparent)]`
    // without `packed` or `align`, so the layout is the C one; the block asserts that every
    // field is `Pod` (so every bit pattern of every field is valid, zero included) and that
    // there is no padding before, between or after the fields. Those are exactly bytemuck's
    // requirements for `Pod` and `Zeroable`; `Copy` and `'static` are required by `Pod` itself
    // (no generics or lifetimes were accepted).
    //
    // SAFETY (TldType): `Raw = Self`, so size and alignment agree and the conversions are the
    // identity; there is no padding (asserted), so every byte of a value is initialized; and
    // `C_TYPE` is built from `size_of`, `align_of`, `offset_of!` and each field's own
    // `C_TYPE` (every field is `TldType`, asserted), so it describes the layout exactly.
    quote! {
        const _: () = {
            const fn __tld_field_must_be_pod_and_tld_type<
                T: ::tld_runtime::__private::bytemuck::Pod + ::tld_runtime::TldType,
            >() {}
            #(#field_checks)*
            #padding_checks
        };

        #[automatically_derived]
        unsafe impl ::tld_runtime::__private::bytemuck::Zeroable for #ident {}

        #[automatically_derived]
        unsafe impl ::tld_runtime::__private::bytemuck::Pod for #ident {}

        #[automatically_derived]
        unsafe impl ::tld_runtime::TldType for #ident {
            type Raw = #ident;

            const C_TYPE: &'static ::tld_runtime::CType =
                &::tld_runtime::CType::Struct(&::tld_runtime::CStruct {
                    name: #name_lit,
                    rust_path: ::core::concat!(::core::module_path!(), #rust_path_suffix),
                    size: ::core::mem::size_of::<#ident>(),
                    align: ::core::mem::align_of::<#ident>(),
                    fields: &[#(#c_fields),*],
                });

            #[inline(always)]
            fn into_raw(self) -> Self::Raw {
                self
            }

            #[inline(always)]
            fn from_raw(raw: Self::Raw) -> Self {
                raw
            }
        }
    }
}

/// One assertion per field that it starts right where the previous one ends (spanned at the
/// field), and one that the struct ends right after its last field (spanned at the struct's
/// name). Together they prove that the struct has no padding.
fn padding_checks(item: &Struct) -> TokenStream {
    let ident = item.ident;
    let mut checks = TokenStream::new();
    let mut previous: Option<&super::parse::Field> = None;
    for field in &item.fields {
        let member = &field.member;
        // `#[repr(C)]` puts the first field at offset 0; each later one must follow its
        // predecessor directly.
        if let Some(prev) = previous {
            let prev_member = &prev.member;
            let prev_ty = prev.ty;
            let message = format!(
                "tld: struct {ident} has padding between fields `{}` and `{}`; BPF may read \
                 those uninitialized bytes, so add explicit padding fields (e.g. \
                 `_pad: [u8; N]`) or reorder the fields",
                prev.c_name, field.c_name
            );
            checks.extend(quote_spanned! {field.span=>
                ::core::assert!(
                    ::core::mem::offset_of!(#ident, #member)
                        == ::core::mem::offset_of!(#ident, #prev_member)
                            + ::core::mem::size_of::<#prev_ty>(),
                    #message
                );
            });
        }
        previous = Some(field);
    }
    if let Some(last) = previous {
        let member = &last.member;
        let ty = last.ty;
        let message = format!(
            "tld: struct {ident} has padding after its last field `{}`; BPF may read those \
             uninitialized bytes, so add explicit padding fields (e.g. `_pad: [u8; N]`) to \
             fill the struct to a multiple of its alignment",
            last.c_name
        );
        checks.extend(quote_spanned! {ident.span()=>
            ::core::assert!(
                ::core::mem::size_of::<#ident>()
                    == ::core::mem::offset_of!(#ident, #member) + ::core::mem::size_of::<#ty>(),
                #message
            );
        });
    }
    checks
}
