//! Parsing and checking the input of `#[task_local_data]`: its arguments and its `static`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::{ParseStream, Parser as _};
use syn::{Attribute, Expr, Ident, Lit, LitStr, Token, Type, Visibility};

use crate::errors::Errors;
use tld_wire::key as c_ident;

/// The arguments inside `#[task_local_data(...)]`.
#[derive(Default)]
pub(crate) struct Args {
    /// `key = "..."`, if given.
    pub(crate) key: Option<LitStr>,
    /// `consistent`, if given: the value is kept in two copies under a sequence word.
    pub(crate) consistent: Option<Ident>,
}

impl Args {
    /// Parses the arguments. Problems with single arguments are pushed to `errors` and the
    /// argument is ignored; a malformed list is one error and gives no arguments.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        let parser = |input: ParseStream| parse_arg_list(input, &mut args, errors);
        if let Err(error) = parser.parse2(tokens) {
            errors.push(error);
        }
        args
    }
}

const ARGS_HELP: &str = "the arguments are `key = \"...\"` and `consistent`, e.g. \
                         `#[task_local_data(key = \"my_hint\", consistent)]`";

fn parse_arg_list(input: ParseStream, args: &mut Args, errors: &mut Errors) -> syn::Result<()> {
    while !input.is_empty() {
        // `parse_any` so that a keyword such as `crate` is reported as an unknown argument
        // rather than as a syntax error.
        let name = input
            .call(Ident::parse_any)
            .map_err(|e| syn::Error::new(e.span(), format!("expected an argument; {ARGS_HELP}")))?;
        if name == "key" {
            parse_key_value(input, &name, args, errors)?;
        } else if name == "consistent" {
            parse_consistent(input, name, args, errors)?;
        } else {
            errors.spanned(
                &name,
                format!("unknown argument `{name}` to #[task_local_data]; {ARGS_HELP}"),
            );
            skip_to_comma(input)?;
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

/// Parses `= "value"` after `key`.
fn parse_key_value(
    input: ParseStream,
    name: &Ident,
    args: &mut Args,
    errors: &mut Errors,
) -> syn::Result<()> {
    if !input.peek(Token![=]) {
        errors.spanned(
            name,
            format!("`key` needs a value: `key = \"...\"`; {ARGS_HELP}"),
        );
        return skip_to_comma(input);
    }
    input.parse::<Token![=]>()?;
    if input.is_empty() || input.peek(Token![,]) {
        return Err(
            input.error("expected a string literal after `key =`, e.g. `key = \"my_hint\"`")
        );
    }
    let value = match input.parse::<Lit>() {
        Ok(Lit::Str(lit)) => lit,
        Ok(other) => {
            errors.spanned(
                &other,
                "`key` takes a string literal, e.g. `key = \"my_hint\"`",
            );
            return Ok(());
        }
        Err(_) => {
            let span = input.span();
            skip_to_comma(input)?;
            errors.push(syn::Error::new(
                span,
                "`key` takes a string literal, e.g. `key = \"my_hint\"`",
            ));
            return Ok(());
        }
    };
    if !value.suffix().is_empty() {
        errors.spanned(&value, "the key's string literal must not have a suffix");
    }
    if args.key.is_some() {
        errors.spanned(
            name,
            "`key` is given more than once; a hint has exactly one key",
        );
    } else {
        args.key = Some(value);
    }
    Ok(())
}

/// Records the flag `consistent`, which takes no value.
fn parse_consistent(
    input: ParseStream,
    name: Ident,
    args: &mut Args,
    errors: &mut Errors,
) -> syn::Result<()> {
    if input.peek(Token![=]) || input.peek(syn::token::Paren) {
        let value = input.step(|cursor| {
            let mut rest = *cursor;
            let mut tokens = TokenStream::new();
            while let Some((tt, next)) = rest.token_tree() {
                if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                    break;
                }
                tokens.extend([tt]);
                rest = next;
            }
            Ok((tokens, rest))
        })?;
        errors.spanned(
            value,
            "`consistent` takes no value: write `#[task_local_data(consistent)]`",
        );
    }
    if args.consistent.is_some() {
        errors.spanned(&name, "`consistent` is given more than once; remove one");
    } else {
        args.consistent = Some(name);
    }
    Ok(())
}

/// Skips the rest of an argument: every token tree up to the next top-level comma.
fn skip_to_comma(input: ParseStream) -> syn::Result<()> {
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

/// The `static` the attribute is applied to.
pub(crate) struct HintStatic {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) static_token: Token![static],
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) init: Expr,
    pub(crate) semi_token: Token![;],
}

impl HintStatic {
    /// Parses the item. Returns `None` if it cannot be expanded at all (it is not a `static`,
    /// or has no initializer); problems that leave it expandable (such as `mut`) are pushed to
    /// `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Option<HintStatic> {
        let parser = |input: ParseStream| parse_static(input, errors);
        match parser.parse2(tokens) {
            Ok(item) => item,
            Err(error) => {
                errors.push(error);
                None
            }
        }
    }
}

const SHAPE_HELP: &str = "#[task_local_data] applies to a `static NAME: T = init;` item";

fn parse_static(input: ParseStream, errors: &mut Errors) -> syn::Result<Option<HintStatic>> {
    let attrs = input.call(Attribute::parse_outer)?;
    let vis: Visibility = input.parse()?;

    if input.peek(Token![const]) {
        let const_token: Token![const] = input.parse()?;
        return Err(syn::Error::new(
            const_token.span,
            format!(
                "{SHAPE_HELP}, not to a `const`: a const has no single address, so it cannot be \
                 a per-thread hint; write `static` instead of `const`"
            ),
        ));
    }
    if !input.peek(Token![static]) {
        // Point at the first token of whatever item this is (`fn`, `struct`, `let`, ...).
        let found = input.step(|cursor| match cursor.token_tree() {
            Some((tt, rest)) => Ok((Some(tt), rest)),
            None => Ok((None, *cursor)),
        })?;
        let (span, what) = match &found {
            Some(tt) => (tt.span(), format!("found `{tt}`")),
            None => (Span::call_site(), "found nothing".to_owned()),
        };
        // Swallow the rest; the error already says all there is to say.
        input.parse::<TokenStream>()?;
        return Err(syn::Error::new(span, format!("{SHAPE_HELP}; {what}")));
    }

    let static_token: Token![static] = input.parse()?;
    if let Some(mut_token) = input.parse::<Option<Token![mut]>>()? {
        errors.spanned(
            mut_token,
            "#[task_local_data] statics cannot be `static mut`: each thread already has its own \
             copy, written with `.set()` or `.update()`; remove `mut`",
        );
    }
    let ident: Ident = input.parse()?;
    input.parse::<Token![:]>()?;
    let ty: Type = input.parse()?;

    if input.peek(Token![;]) {
        let semi: Token![;] = input.parse()?;
        errors.push(syn::Error::new(
            semi.span,
            format!(
                "#[task_local_data] needs an initializer: `static {ident}: {} = <value>;`; it \
                 is the value every thread starts with",
                super::type_name::type_name(&ty)
            ),
        ));
        return Ok(None);
    }
    input.parse::<Token![=]>()?;
    let init: Expr = input.parse()?;
    let semi_token: Token![;] = input.parse()?;

    // A second `#[task_local_data]` would wrap the `TaskLocal` again; report it and drop it, so
    // that its expansion adds no errors of its own.
    let attrs: Vec<Attribute> = attrs
        .into_iter()
        .filter(|attr| {
            let applied_again = attr
                .path()
                .segments
                .last()
                .is_some_and(|segment| segment.ident == "task_local_data");
            if applied_again {
                errors.spanned(
                    attr,
                    "#[task_local_data] is applied more than once to this static; remove one",
                );
            }
            !applied_again
        })
        .collect();

    Ok(Some(HintStatic {
        attrs,
        vis,
        static_token,
        ident,
        ty,
        init,
        semi_token,
    }))
}

/// The key a hint is registered under.
pub(crate) struct Key {
    /// The key's text.
    pub(crate) value: String,
    /// Where it came from: the `key = "..."` literal, or the static's name.
    pub(crate) span: Span,
}

/// Decides the key (`key = "..."`, else the static's name lower-cased) and checks it; a bad key
/// is pushed to `errors` and still returned, so that the expansion can go on.
pub(crate) fn resolve_key(args: &Args, item: &HintStatic, errors: &mut Errors) -> Key {
    match &args.key {
        Some(lit) => {
            let value = lit.value();
            if let Err(invalid) = c_ident::check_key(&value) {
                errors.spanned(lit, invalid.describe("key", &value));
            }
            Key {
                value,
                span: lit.span(),
            }
        }
        None => {
            let value = item.ident.unraw().to_string().to_lowercase();
            if let Err(invalid) = c_ident::check_key(&value) {
                errors.spanned(
                    &item.ident,
                    format!(
                        "{}; it comes from the static's name, so give another one with \
                         #[task_local_data(key = \"...\")]",
                        invalid.describe("key", &value)
                    ),
                );
            }
            Key {
                value,
                span: item.ident.span(),
            }
        }
    }
}
