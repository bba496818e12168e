//! `#[derive(TldType)]`: implements `tld_runtime::TldType` for a plain-data `#[repr(C)]` struct.
//!
//! [`parse`] checks the struct syntactically and collects every problem; [`expand`] writes the
//! trait impls and the compile-time layout checks that syntax alone cannot do.

mod expand;
mod parse;

use proc_macro2::TokenStream;
use syn::DeriveInput;

/// Expands `#[derive(TldType)]` on `input`.
pub(crate) fn expand_derive(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.into_compile_error(),
    };
    match parse::Struct::from_ast(&input) {
        Ok(item) => expand::expand(&item),
        Err(errors) => errors.into_compile_error(),
    }
}
