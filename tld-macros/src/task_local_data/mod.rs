//! `#[task_local_data]`: turns a `static` into a registered `tld_runtime::TaskLocal`.
//!
//! [`parse`] reads the arguments and the item and collects every problem; [`expand`] writes the
//! `TaskLocal` static, its compile-time checks and its registration.

mod expand;
mod parse;
mod type_name;

use proc_macro2::TokenStream;

use crate::errors::Errors;

/// Expands `#[task_local_data(args)] input`.
///
/// Errors that leave the item's shape intact (a bad key, `static mut`, an unknown argument) are
/// emitted next to a full expansion, so that the rest of the crate still sees a `TaskLocal`
/// and reports nothing but the real problem.
pub(crate) fn expand_attribute(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let args = parse::Args::parse(args, &mut errors);
    let Some(item) = parse::HintStatic::parse(input, &mut errors) else {
        return errors.into_compile_errors();
    };
    let key = parse::resolve_key(&args, &item, &mut errors);
    let expanded = expand::expand(&item, &key, args.consistent.is_some());
    let errors = errors.into_compile_errors();
    quote::quote! {
        #errors
        #expanded
    }
}
