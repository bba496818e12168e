//! Spelling a type the way a person writes it, for `Site::type_name`.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;

/// Renders `ty` as source text with conventional spacing: `[u8; 16]`, `Vec<u8>`,
/// `&'static str`, rather than the token printer's `[u8 ; 16]`.
pub(crate) fn type_name(ty: &impl ToTokens) -> String {
    let mut out = String::new();
    write_tokens(&mut out, ty.to_token_stream());
    out
}

fn write_tokens(out: &mut String, tokens: TokenStream) {
    let mut tokens = tokens.into_iter().peekable();
    while let Some(tt) = tokens.next() {
        match tt {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                let spaced = match group.delimiter() {
                    // `fn(u8)`, `Fn()`: a parenthesis hugs the name it follows, but not a
                    // keyword or lifetime (`&mut (u8, u16)`, `&'a (u8, u16)`).
                    Delimiter::Parenthesis => after_keyword_or_lifetime(out),
                    _ => ends_with_word(out),
                };
                if spaced {
                    out.push(' ');
                }
                out.push_str(open);
                write_tokens(out, group.stream());
                out.push_str(close);
            }
            TokenTree::Ident(ident) => {
                space_before_word(out);
                out.push_str(&ident.to_string());
            }
            TokenTree::Literal(lit) => {
                space_before_word(out);
                out.push_str(&lit.to_string());
            }
            TokenTree::Punct(punct) => {
                let c = punct.as_char();
                let joint = punct.spacing() == Spacing::Joint;
                match c {
                    ',' | ';' => {
                        out.push(c);
                        out.push(' ');
                    }
                    // `'a`: the apostrophe of a lifetime sticks to the name after it.
                    '\'' => {
                        space_before_word(out);
                        out.push(c);
                    }
                    '+' | '=' => {
                        trim_trailing_space(out);
                        out.push(' ');
                        out.push(c);
                        out.push(' ');
                    }
                    '-' if joint => {
                        // `->`
                        trim_trailing_space(out);
                        out.push_str(" -");
                    }
                    '>' if out.ends_with(" -") => out.push_str("> "),
                    '&' | '*' | '!' => {
                        space_before_word(out);
                        out.push(c);
                    }
                    _ => out.push(c),
                }
                if c == '\'' {
                    // The lifetime's name follows without a space.
                    if let Some(TokenTree::Ident(name)) = tokens.peek() {
                        out.push_str(&name.to_string());
                        tokens.next();
                    }
                }
            }
        }
    }
    trim_trailing_space(out);
}

/// Separates a word from a preceding word (`dyn Trait`, `mut T`, `'static str`).
fn space_before_word(out: &mut String) {
    if ends_with_word(out) {
        out.push(' ');
    }
}

fn ends_with_word(out: &str) -> bool {
    out.chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

fn after_keyword_or_lifetime(out: &str) -> bool {
    let word_start = out
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &out[word_start..];
    let lifetime = out[..word_start].ends_with('\'');
    !word.is_empty() && (lifetime || matches!(word, "mut" | "const" | "dyn" | "impl" | "as"))
}

fn trim_trailing_space(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::type_name;

    fn render(src: &str) -> String {
        let ty: syn::Type = match syn::parse_str(src) {
            Ok(ty) => ty,
            Err(e) => panic!("{src}: {e}"),
        };
        type_name(&ty)
    }

    #[test]
    fn conventional_spacing() {
        for src in [
            "i32",
            "[u8; 1000]",
            "[[i64; 3]; 2]",
            "crate::hints::TestStruct",
            "Vec<u8>",
            "&'static str",
            "&mut [u8]",
            "*const u8",
            "*mut T",
            "(u8, u16)",
            "fn(u8) -> u16",
            "Box<dyn Fn() + Send>",
            "<T as Trait>::Assoc",
            "Foo<Item = u8>",
            "&mut (u8, u16)",
            "&'a (u8, u16)",
            "[Inner; 4]",
        ] {
            assert_eq!(render(src), src);
        }
    }
}
