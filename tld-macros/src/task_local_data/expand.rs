//! Writing the expansion of `#[task_local_data]`.
//!
//! For `#[task_local_data] pub static NAME: T = init;` the output is below; with
//! `#[task_local_data(consistent)]` the handle is `ConsistentTaskLocal<T>` instead of
//! `TaskLocal<T>`, and the size check leaves room for its 8-byte counter.
//!
//! ```text
//! pub static NAME: ::tld_runtime::TaskLocal<T> = {
//!     // size >= 1, align <= MAX_HINT_ALIGN, size <= MAX_HINT_SIZE: asserts spanned at T
//!     const { .. }
//!     ::tld_runtime::TaskLocal::<T>::__new(
//!         ::tld_runtime::__private::Site { key: "name", rust_name: "NAME", type_name: "T", .. },
//!         init,
//!     )
//! };
//! const _: () = {
//!     #[distributed_slice(::tld_runtime::__private::TLD_HINTS_V0_1)]
//!     #[linkme(crate = ::tld_runtime::__private::linkme)]
//!     static __TLD_HINT: &'static dyn ::tld_runtime::__private::Hint = &NAME;
//! };
//! ```
//!
//! `T: TldType` is required by `TaskLocal<T>` itself; since the handle's type and constructor
//! are spanned at `T`, an unsatisfied bound is reported at the type the user wrote, naming
//! `TldType`. A separate assertion would only repeat that error.
//!
//! The registration sits in an anonymous `const` so that its name never collides, also for
//! statics declared in function bodies; linkme supports elements in any scope.
//!
//! Every path is absolute through `::tld_runtime`, since users depend on that crate only.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::LitStr;

use super::parse::{HintStatic, Key};
use super::type_name::type_name;

pub(super) fn expand(item: &HintStatic, key: &Key, consistent: bool) -> TokenStream {
    let HintStatic {
        attrs,
        vis,
        static_token,
        ident,
        ty,
        init,
        semi_token,
    } = item;

    let key_lit = LitStr::new(&key.value, key.span);
    let rust_name = LitStr::new(&ident.unraw().to_string(), ident.span());
    let type_name_str = type_name(ty);
    let type_name_lit = LitStr::new(&type_name_str, Span::call_site());

    // A `#[cfg]` on the static must also remove its registration, which refers to it.
    let cfgs = attrs.iter().filter(|attr| attr.path().is_ident("cfg"));

    let checks = type_checks(item, &type_name_str, consistent);

    // The handle's type and constructor are spanned at `T`, so that an unsatisfied
    // `T: TldType` bound is reported at the type the user wrote.
    let ty_span = ty.span();
    let handle = if consistent {
        quote_spanned!(ty_span=> ConsistentTaskLocal)
    } else {
        quote_spanned!(ty_span=> TaskLocal)
    };
    let handle_ty = quote_spanned!(ty_span=> ::tld_runtime::#handle<#ty>);
    let constructor = quote_spanned!(ty_span=> ::tld_runtime::#handle::<#ty>::__new);

    // The checks run in the initializer, before the constructor: a type they refuse stops the
    // evaluation there, with their message at the user's type, and the constructor's own
    // (identical) checks never report a second error from inside the runtime.
    quote! {
        #(#attrs)*
        #vis #static_token #ident: #handle_ty = {
            const { #checks }
            #constructor(
                ::tld_runtime::__private::Site {
                    key: #key_lit,
                    rust_name: #rust_name,
                    type_name: #type_name_lit,
                    module_path: ::core::module_path!(),
                    file: ::core::file!(),
                    line: ::core::line!(),
                    column: ::core::column!(),
                },
                #init,
            )
        }#semi_token

        #(#cfgs)*
        const _: () = {
            #[::tld_runtime::__private::linkme::distributed_slice(::tld_runtime::__private::TLD_HINTS_V0_1)]
            #[linkme(crate = ::tld_runtime::__private::linkme)]
            static __TLD_HINT: &'static dyn ::tld_runtime::__private::Hint = &#ident;
        };
    }
}

/// Compile-time checks on the hint's type, each spanned at the type so that a failure points
/// at what the user wrote.
fn type_checks(item: &HintStatic, type_name: &str, consistent: bool) -> TokenStream {
    use tld_wire::format::{
        BASE_PAGE_SIZE, DATA_START, MAX_CONSISTENT_SIZE, MAX_HINT_ALIGN, MAX_HINT_SIZE,
        SEQ_VALUE_OFFSET, VALUE_ALIGN,
    };
    let ty = &item.ty;
    let span = ty.span();

    let zero_sized = format!(
        "tld: a hint must be at least 1 byte, and `{type_name}` is zero-sized: the metadata \
         page marks an unpublished entry with size 0, so BPF would never find this hint"
    );
    let over_aligned = format!(
        "tld: a hint's alignment must be at most {MAX_HINT_ALIGN} (MAX_HINT_ALIGN), and \
         `{type_name}` needs more: the data area places every hint at an {VALUE_ALIGN}-byte \
         boundary"
    );
    let (max_size, too_large) = if consistent {
        (
            quote!(::tld_runtime::__private::MAX_CONSISTENT_SIZE),
            format!(
                "tld: a consistent hint keeps two copies of its value and an \
                 {SEQ_VALUE_OFFSET}-byte sequence word in the per-thread data area of \
                 {MAX_HINT_SIZE} bytes, so its type may have {MAX_CONSISTENT_SIZE} bytes at \
                 most (MAX_CONSISTENT_SIZE), and `{type_name}` is larger"
            ),
        )
    } else {
        (
            quote!(::tld_runtime::__private::MAX_HINT_SIZE),
            format!(
                "tld: a hint must fit in the per-thread data area of {MAX_HINT_SIZE} bytes \
                 (MAX_HINT_SIZE: a {} KiB page minus its {DATA_START}-byte header), and \
                 `{type_name}` is larger",
                BASE_PAGE_SIZE / 1024
            ),
        )
    };

    quote_spanned! {span=>
        ::core::assert!(::core::mem::size_of::<#ty>() >= 1, #zero_sized);
        ::core::assert!(
            ::core::mem::align_of::<#ty>() <= ::tld_runtime::__private::MAX_HINT_ALIGN,
            #over_aligned
        );
        ::core::assert!(::core::mem::size_of::<#ty>() <= #max_size, #too_large);
    }
}
