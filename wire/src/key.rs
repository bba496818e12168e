//! What a key, and any name that appears in the generated C header, must look like.
//!
//! A hint's key names a metadata entry (at most [`MAX_KEY_LEN`] bytes, with the NUL of the
//! 62-byte name field after it), a member of `struct tld_offsets` and the argument of the BPF
//! lookup macros; a derived struct's name and field names become a C struct definition. All of
//! them must therefore be C identifiers that no C compiler reads as a keyword.
//!
//! The procedural macros check keys and names with these functions at compile time, and the
//! runtime checks keys created at run time, and hand-made registrations, with the same ones.

pub use crate::format::MAX_KEY_LEN;

/// Keywords of C11 and C23, plus the GNU `asm` that clang accepts in the GNU dialects BPF
/// programs are compiled with. None of them may name a key, a struct or a field.
const C_KEYWORDS: &[&str] = &[
    // C89/C99
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    // C99/C11 underscore keywords
    "_Alignas",
    "_Alignof",
    "_Atomic",
    "_Bool",
    "_Complex",
    "_Generic",
    "_Imaginary",
    "_Noreturn",
    "_Static_assert",
    "_Thread_local",
    // C23
    "alignas",
    "alignof",
    "bool",
    "constexpr",
    "false",
    "nullptr",
    "static_assert",
    "thread_local",
    "true",
    "typeof",
    "typeof_unqual",
    "_BitInt",
    "_Decimal128",
    "_Decimal32",
    "_Decimal64",
    // GNU
    "asm",
];

/// Why a name cannot be used in C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// The name is the empty string.
    Empty,
    /// The name starts with a digit.
    LeadingDigit,
    /// The name contains this character, which C identifiers may not.
    BadChar(char),
    /// The name is a C keyword.
    Keyword,
    /// The name is longer than the limit, in bytes.
    TooLong {
        /// The name's length.
        len: usize,
        /// The most bytes a name may have.
        max: usize,
    },
}

impl Invalid {
    /// Describes the problem for an error message about `name`, used as `what` (e.g. "key").
    pub fn describe(&self, what: &str, name: &str) -> String {
        match self {
            Invalid::Empty => format!("the {what} is empty; it must be a C identifier"),
            Invalid::LeadingDigit => format!(
                "the {what} `{name}` starts with a digit; it must be a C identifier \
                 ([A-Za-z_][A-Za-z0-9_]*) because it names a member in the generated C header"
            ),
            Invalid::BadChar(c) => format!(
                "the {what} `{name}` contains {c:?}; it must be a C identifier \
                 ([A-Za-z_][A-Za-z0-9_]*) because it names a member in the generated C header"
            ),
            Invalid::Keyword => format!(
                "the {what} `{name}` is a C keyword; the generated C header could not use it \
                 as a name"
            ),
            Invalid::TooLong { len, max } => format!(
                "the {what} `{name}` is {len} bytes long; at most {max} fit in the metadata \
                 page's {}-byte name field with its NUL",
                crate::format::NAME_LEN
            ),
        }
    }
}

/// Checks that `name` is a C identifier that is not a C keyword.
pub fn check_c_name(name: &str) -> Result<(), Invalid> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(Invalid::Empty),
        Some(c) if c.is_ascii_digit() => return Err(Invalid::LeadingDigit),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => return Err(Invalid::BadChar(c)),
        Some(_) => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        return Err(Invalid::BadChar(c));
    }
    if C_KEYWORDS.contains(&name) {
        return Err(Invalid::Keyword);
    }
    Ok(())
}

/// Checks that `key` can be a hint's key: a C name of at most [`MAX_KEY_LEN`] bytes.
pub fn check_key(key: &str) -> Result<(), Invalid> {
    check_c_name(key)?;
    if key.len() > MAX_KEY_LEN {
        return Err(Invalid::TooLong {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_c_identifiers() {
        for ok in [
            "value1",
            "_",
            "_x9",
            "A",
            "test_basic_value4",
            "Int",
            "bool_",
        ] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_key(&"k".repeat(MAX_KEY_LEN)), Ok(()));
    }

    #[test]
    fn rejects_non_identifiers() {
        assert_eq!(check_key(""), Err(Invalid::Empty));
        assert_eq!(check_key("9abc"), Err(Invalid::LeadingDigit));
        assert_eq!(check_key("has-dash"), Err(Invalid::BadChar('-')));
        assert_eq!(check_key("a b"), Err(Invalid::BadChar(' ')));
        assert_eq!(check_key("é"), Err(Invalid::BadChar('é')));
        assert_eq!(check_key("xé"), Err(Invalid::BadChar('é')));
        assert_eq!(check_key("r#type"), Err(Invalid::BadChar('#')));
    }

    #[test]
    fn rejects_keywords() {
        for kw in [
            "int", "struct", "char", "_Bool", "bool", "typeof", "asm", "restrict",
        ] {
            assert_eq!(check_key(kw), Err(Invalid::Keyword), "{kw}");
        }
    }

    #[test]
    fn rejects_long_keys() {
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            check_key(&long),
            Err(Invalid::TooLong {
                len: MAX_KEY_LEN + 1,
                max: MAX_KEY_LEN
            })
        );
        // The length limit does not apply to struct and field names.
        assert_eq!(check_c_name(&long), Ok(()));
    }

    #[test]
    fn messages_name_the_problem() {
        let msg = Invalid::Keyword.describe("key", "int");
        assert!(msg.contains("`int` is a C keyword"), "{msg}");
        let msg = Invalid::TooLong { len: 62, max: 61 }.describe("key", "x");
        assert!(
            msg.contains("62 bytes") && msg.contains("at most 61"),
            "{msg}"
        );
    }
}
