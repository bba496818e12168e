//! Collects every problem in a macro input before expansion, so one compile shows them all.

use proc_macro2::TokenStream;
use quote::ToTokens;
use std::fmt::Display;

/// A list of spanned errors, reported together.
///
/// Checks push into it instead of returning at the first problem; the expansion then runs only
/// if the list is empty (or emits the errors next to a best-effort expansion).
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// An empty list.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds an error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Adds an error that points at `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `Ok` if no error was pushed, else all of them as one `syn::Error`.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The `compile_error!` invocations for every error pushed (empty if none).
    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.combined
            .map(syn::Error::into_compile_error)
            .unwrap_or_default()
    }
}
