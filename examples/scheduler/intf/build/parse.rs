// SPDX-License-Identifier: GPL-2.0-only
//! A strict parser of the C subset `intf.h` is written in, and the Rust it becomes.
//!
//! Accepted, and nothing else:
//! - comments (`/* */`, `//`): a comment alone on its line documents the next item; one after
//!   an item on the same line documents that item (or struct field);
//! - an include guard: `#ifndef G`, `#define G`, `#endif`;
//! - `#define NAME VALUE`, where VALUE is an integer literal or `(A << B)` of two of them, with
//!   the suffix `U` (a `u32`), `ULL`/`UL` (a `u64`), `LL`/`L` (an `i64`) or none (an `i32`);
//! - `struct name { TYPE field; ... };` with TYPE one of `u8`, `s8`, `u16`, `s16`, `u32`, `s32`,
//!   `u64`, `s64` (or their `__u32`-style spellings);
//! - `_Static_assert(sizeof(struct name) == N, "...");`, checked against the C layout rules.
//!
//! Used by `build.rs`, and compiled into the crate's tests to check what it refuses.

use std::fmt::Write as _;

/// One item of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `#define NAME VALUE`.
    Const {
        name: String,
        rust_type: &'static str,
        value: u64,
        doc: String,
    },
    /// A struct.
    Struct(Struct),
}

/// A struct of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Struct {
    /// The C name (`tld_sched_record`).
    pub name: String,
    /// The comment before it.
    pub doc: String,
    /// The fields, in order.
    pub fields: Vec<Field>,
    /// The size a `_Static_assert` states, if one does.
    pub asserted_size: Option<u64>,
}

/// A field of a struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its Rust type (`u32`, `i64`, ...).
    pub rust_type: &'static str,
    /// Its size (and alignment) in bytes.
    pub size: u64,
    /// The comment after it.
    pub doc: String,
}

impl Struct {
    /// Each field's offset and the struct's size, by the C rules (fields aligned to their size,
    /// the whole to its largest field).
    pub fn layout(&self) -> (Vec<u64>, u64) {
        let mut offsets = Vec::new();
        let mut at = 0u64;
        let mut align = 1u64;
        for f in &self.fields {
            at = at.next_multiple_of(f.size);
            offsets.push(at);
            at += f.size;
            align = align.max(f.size);
        }
        (offsets, at.next_multiple_of(align))
    }

    /// The Rust name: `tld_sched_record` becomes `TldSchedRecord`.
    pub fn rust_name(&self) -> String {
        self.name
            .split('_')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let mut c = p.chars();
                match c.next() {
                    Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// An integer literal: its value and its suffix, upper-cased.
    Int(u64, String),
    Str,
    Punct(&'static str),
    /// A comment, and whether it followed a token on the same line.
    Comment(String, bool),
    Hash,
    Newline,
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, String> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut line = 1;
    let mut out: Vec<(usize, Tok)> = Vec::new();
    let mut token_on_line = false;
    while i < b.len() {
        let c = b[i];
        let start_line = line;
        if c == b'\n' {
            out.push((line, Tok::Newline));
            line += 1;
            i += 1;
            token_on_line = false;
        } else if c == b' ' || c == b'\t' || c == b'\r' {
            i += 1;
        } else if src[i..].starts_with("/*") {
            let end = src[i + 2..]
                .find("*/")
                .ok_or(format!("line {line}: unterminated comment"))?;
            let body = &src[i + 2..i + 2 + end];
            line += body.matches('\n').count();
            out.push((start_line, Tok::Comment(clean_comment(body), token_on_line)));
            i += 2 + end + 2;
        } else if src[i..].starts_with("//") {
            let end = src[i..].find('\n').map_or(b.len(), |e| i + e);
            out.push((
                start_line,
                Tok::Comment(src[i + 2..end].trim().to_string(), token_on_line),
            ));
            i = end;
        } else if c == b'#' {
            out.push((line, Tok::Hash));
            token_on_line = true;
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((line, Tok::Ident(src[s..i].to_string())));
            token_on_line = true;
        } else if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            out.push((
                line,
                int(&src[s..i]).map_err(|e| format!("line {line}: {e}"))?,
            ));
            token_on_line = true;
        } else if c == b'"' {
            let end = src[i + 1..]
                .find(['"', '\n', '\\'])
                .ok_or(format!("line {line}: unterminated string"))?;
            if b[i + 1 + end] != b'"' {
                return Err(format!("line {line}: unsupported string literal"));
            }
            out.push((line, Tok::Str));
            i += end + 2;
            token_on_line = true;
        } else {
            let punct = ["<<", "==", "(", ")", "{", "}", ";", ",", "[", "]"]
                .into_iter()
                .find(|p| src[i..].starts_with(p))
                .ok_or(format!("line {line}: unexpected character {:?}", c as char))?;
            out.push((line, Tok::Punct(punct)));
            i += punct.len();
            token_on_line = true;
        }
    }
    Ok(out)
}

/// A comment's text on one line, without the ` * ` margins of a block comment.
fn clean_comment(body: &str) -> String {
    body.lines()
        .map(|l| l.trim().trim_start_matches('*').trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn int(text: &str) -> Result<Tok, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_hexdigit() && c != 'x' && c != 'X')
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    // A hex literal's digits may end in letters that look like a suffix; decimal ones cannot.
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        return Err(format!("octal literal {text} is not supported"));
    } else {
        digits.parse::<u64>()
    }
    .map_err(|_| format!("bad integer literal {text}"))?;
    let suffix = suffix.to_ascii_uppercase();
    if !["", "U", "UL", "ULL", "L", "LL"].contains(&suffix.as_str()) {
        return Err(format!("unsupported integer suffix in {text}"));
    }
    Ok(Tok::Int(value, suffix))
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
}

impl Parser {
    fn line(&self) -> usize {
        self.toks
            .get(self.at)
            .or(self.toks.last())
            .map_or(0, |t| t.0)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.1)
    }

    fn next(&mut self) -> Result<Tok, String> {
        let t = self
            .toks
            .get(self.at)
            .map(|t| t.1.clone())
            .ok_or("unexpected end of file")?;
        self.at += 1;
        Ok(t)
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("line {}: {what}", self.line()))
    }

    /// The next token that is not a newline; comments are returned.
    fn next_skipping_newlines(&mut self) -> Result<Tok, String> {
        loop {
            match self.next()? {
                Tok::Newline => {}
                t => return Ok(t),
            }
        }
    }

    /// Skips newlines and comments, returning the comments' text.
    fn skip_space(&mut self) -> String {
        let mut doc = Vec::new();
        while let Some(t) = self.peek() {
            match t {
                Tok::Newline => self.at += 1,
                Tok::Comment(c, _) => {
                    doc.push(c.clone());
                    self.at += 1;
                }
                _ => break,
            }
        }
        doc.join(" ")
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), String> {
        match self.next_skipping_newlines()? {
            Tok::Punct(q) if q == p => Ok(()),
            t => self.err(&format!("expected `{p}`, found {t:?}")),
        }
    }

    fn expect_ident(&mut self) -> Result<String, String> {
        match self.next_skipping_newlines()? {
            Tok::Ident(s) => Ok(s),
            t => self.err(&format!("expected a name, found {t:?}")),
        }
    }

    fn expect_keyword(&mut self, k: &str) -> Result<(), String> {
        match self.expect_ident()? {
            s if s == k => Ok(()),
            s => self.err(&format!("expected `{k}`, found `{s}`")),
        }
    }

    /// A trailing comment on the current line, if any.
    fn trailing_comment(&mut self) -> String {
        match self.peek() {
            Some(Tok::Comment(c, true)) => {
                let c = c.clone();
                self.at += 1;
                c
            }
            _ => String::new(),
        }
    }

    /// The tokens up to the end of the line, and the comment that ends it (if any).
    fn rest_of_line(&mut self) -> (Vec<Tok>, String) {
        let mut toks = Vec::new();
        let mut doc = String::new();
        while let Some(t) = self.peek().cloned() {
            self.at += 1;
            match t {
                Tok::Newline => break,
                Tok::Comment(c, _) => doc = c,
                t => toks.push(t),
            }
        }
        (toks, doc)
    }
}

/// Parses the header.
pub fn parse(src: &str) -> Result<Vec<Item>, String> {
    let mut p = Parser {
        toks: lex(src)?,
        at: 0,
    };
    let mut items = Vec::new();
    let mut guard: Option<String> = None;
    let mut guard_defined = false;
    let mut open_ifs = 0;
    loop {
        let doc = p.skip_space();
        let Some(tok) = p.peek().cloned() else { break };
        p.at += 1;
        match tok {
            Tok::Hash => {
                let directive = p.expect_ident()?;
                let name_line = p.line();
                match directive.as_str() {
                    "ifndef" if guard.is_none() => {
                        guard = Some(p.expect_ident()?);
                        open_ifs += 1;
                        let (rest, _) = p.rest_of_line();
                        if !rest.is_empty() {
                            return p.err("unexpected tokens after #ifndef");
                        }
                    }
                    "endif" if open_ifs > 0 => {
                        open_ifs -= 1;
                        let (rest, _) = p.rest_of_line();
                        if !rest.is_empty() {
                            return p.err("unexpected tokens after #endif");
                        }
                    }
                    "define" => {
                        let name = p.expect_ident()?;
                        let (value, trailing) = p.rest_of_line();
                        if value.is_empty() {
                            if guard.as_deref() == Some(name.as_str()) && !guard_defined {
                                guard_defined = true;
                                continue;
                            }
                            return Err(format!(
                                "line {name_line}: #define {name} without a value is not supported"
                            ));
                        }
                        let (rust_type, value) = define_value(&value)
                            .map_err(|e| format!("line {name_line}: #define {name}: {e}"))?;
                        let doc = if trailing.is_empty() { doc } else { trailing };
                        items.push(Item::Const {
                            name,
                            rust_type,
                            value,
                            doc,
                        });
                    }
                    d => {
                        return Err(format!(
                            "line {name_line}: the directive #{d} is not supported here"
                        ))
                    }
                }
            }
            Tok::Ident(k) if k == "struct" => {
                let s = parse_struct(&mut p, doc)?;
                if items
                    .iter()
                    .any(|i| matches!(i, Item::Struct(o) if o.name == s.name))
                {
                    return p.err(&format!("struct {} defined twice", s.name));
                }
                items.push(Item::Struct(s));
            }
            Tok::Ident(k) if k == "_Static_assert" => {
                let (name, size) = parse_static_assert(&mut p)?;
                let Some(Item::Struct(s)) = items
                    .iter_mut()
                    .find(|i| matches!(i, Item::Struct(s) if s.name == name))
                else {
                    return p.err(&format!(
                        "_Static_assert on struct {name}, not defined above"
                    ));
                };
                let (_, computed) = s.layout();
                if computed != size {
                    return p.err(&format!(
                        "struct {name} is {computed} bytes by the C layout rules, \
                         but its _Static_assert says {size}"
                    ));
                }
                s.asserted_size = Some(size);
            }
            t => return p.err(&format!("unsupported construct starting with {t:?}")),
        }
    }
    if open_ifs != 0 {
        return Err("unterminated #ifndef".into());
    }
    Ok(items)
}

/// The Rust type and value of a `#define`'s value.
fn define_value(toks: &[Tok]) -> Result<(&'static str, u64), String> {
    let typed = |value: u64, suffix: &str| -> Result<(&'static str, u64), String> {
        let (ty, max) = match suffix {
            "U" => ("u32", u64::from(u32::MAX)),
            "UL" | "ULL" => ("u64", u64::MAX),
            "L" | "LL" => ("i64", i64::MAX as u64),
            _ => ("i32", i32::MAX as u64),
        };
        if value > max {
            return Err(format!("{value} does not fit its type ({ty})"));
        }
        Ok((ty, value))
    };
    match toks {
        [Tok::Int(v, s)] => typed(*v, s),
        [Tok::Punct("("), Tok::Int(v, s), Tok::Punct("<<"), Tok::Int(by, _), Tok::Punct(")")] => {
            let bits = match s.as_str() {
                "U" | "" => 32,
                _ => 64,
            };
            if *by >= bits - u64::from(s.is_empty()) || v.leading_zeros() < *by as u32 {
                return Err(format!("{v} << {by} overflows"));
            }
            typed(v << by, s)
        }
        _ => Err(format!(
            "only an integer literal or (A << B) is supported, found {toks:?}"
        )),
    }
}

fn parse_struct(p: &mut Parser, doc: String) -> Result<Struct, String> {
    let name = p.expect_ident()?;
    p.expect_punct("{")?;
    let mut fields: Vec<Field> = Vec::new();
    loop {
        p.skip_space();
        if p.peek() == Some(&Tok::Punct("}")) {
            p.at += 1;
            break;
        }
        let ty = p.expect_ident()?;
        let (rust_type, size) = match ty.trim_start_matches("__") {
            "u8" => ("u8", 1),
            "s8" => ("i8", 1),
            "u16" => ("u16", 2),
            "s16" => ("i16", 2),
            "u32" => ("u32", 4),
            "s32" => ("i32", 4),
            "u64" => ("u64", 8),
            "s64" => ("i64", 8),
            _ => return p.err(&format!("struct {name}: unsupported field type `{ty}`")),
        };
        let field = p.expect_ident()?;
        if fields.iter().any(|f| f.name == field) {
            return p.err(&format!("struct {name}: field {field} twice"));
        }
        p.expect_punct(";")?;
        let doc = p.trailing_comment();
        fields.push(Field {
            name: field,
            rust_type,
            size,
            doc,
        });
    }
    p.expect_punct(";")?;
    if fields.is_empty() {
        return p.err(&format!("struct {name} has no fields"));
    }
    Ok(Struct {
        name,
        doc,
        fields,
        asserted_size: None,
    })
}

fn parse_static_assert(p: &mut Parser) -> Result<(String, u64), String> {
    p.expect_punct("(")?;
    p.expect_keyword("sizeof")?;
    p.expect_punct("(")?;
    p.expect_keyword("struct")?;
    let name = p.expect_ident()?;
    p.expect_punct(")")?;
    p.expect_punct("==")?;
    let size = match p.next_skipping_newlines()? {
        Tok::Int(v, _) => v,
        t => return p.err(&format!("expected a size, found {t:?}")),
    };
    p.expect_punct(",")?;
    match p.next_skipping_newlines()? {
        Tok::Str => {}
        t => return p.err(&format!("expected the assertion's message, found {t:?}")),
    }
    p.expect_punct(")")?;
    p.expect_punct(";")?;
    Ok((name, size))
}

/// A doc attribute with `text` (or `fallback` if it is empty).
fn doc_attr(out: &mut String, indent: &str, text: &str, fallback: &str) {
    let text = if text.is_empty() { fallback } else { text };
    let _ = writeln!(out, "{indent}#[doc = {:?}]", format!(" {text}"));
}

/// The Rust module the items become.
pub fn to_rust(items: &[Item]) -> String {
    let mut out = String::from(
        "// Generated by build.rs from the scheduler's src/bpf/intf.h: edit that header instead.\n\n",
    );
    for item in items {
        match item {
            Item::Const {
                name,
                rust_type,
                value,
                doc,
            } => {
                doc_attr(&mut out, "", doc, &format!("`{name}` of `intf.h`."));
                let _ = writeln!(out, "pub const {name}: {rust_type} = {value:#x};\n");
            }
            Item::Struct(s) => {
                let rust = s.rust_name();
                let (offsets, size) = s.layout();
                doc_attr(&mut out, "", &s.doc, "");
                let _ = writeln!(out, "///\n/// `struct {}` of `intf.h`.", s.name);
                out.push_str("#[repr(C)]\n#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]\n");
                let _ = writeln!(out, "pub struct {rust} {{");
                for f in &s.fields {
                    doc_attr(&mut out, "    ", &f.doc, &format!("`{}`.", f.name));
                    let _ = writeln!(out, "    pub {}: {},", f.name, f.rust_type);
                }
                out.push_str("}\n\n");
                let _ = writeln!(out, "impl {rust} {{");
                let _ = writeln!(
                    out,
                    "    /// The size of `struct {}`, in bytes.\n    pub const SIZE: usize = {size};\n",
                    s.name
                );
                out.push_str(
                    "    /// Parses a value as the kernel hands it out (native byte order); `None` if\n    \
                     /// `bytes` is shorter than [`Self::SIZE`]. Bytes after it are ignored.\n    \
                     pub fn from_bytes(bytes: &[u8]) -> Option<Self> {\n        \
                     let bytes: &[u8; Self::SIZE] = bytes.get(..Self::SIZE)?.try_into().ok()?;\n        \
                     Some(Self {\n",
                );
                for (f, off) in s.fields.iter().zip(&offsets) {
                    let _ = writeln!(
                        out,
                        "            {}: {}::from_ne_bytes(crate::field(bytes, {off})),",
                        f.name, f.rust_type
                    );
                }
                out.push_str("        })\n    }\n}\n\n");
                let _ = writeln!(
                    out,
                    "const _: () = assert!(::core::mem::size_of::<{rust}>() == {rust}::SIZE);"
                );
                for (f, off) in s.fields.iter().zip(&offsets) {
                    let _ = writeln!(
                        out,
                        "const _: () = assert!(::core::mem::offset_of!({rust}, {}) == {off});",
                        f.name
                    );
                }
                out.push('\n');
            }
        }
    }
    out
}
