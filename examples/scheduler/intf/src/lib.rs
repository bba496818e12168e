// SPDX-License-Identifier: GPL-2.0-only
//! What `scx_tld`'s BPF side shares with user space: the constants and structs of its
//! `src/bpf/intf.h`, as Rust.
//!
//! The items are generated from that header at build time (`build.rs`), so the header is the
//! one place to change them: the scheduler (its per-CPU counters) and the VM tests (the pinned
//! `records` map) both read them from here. Each struct is `#[repr(C)]` with its size and every
//! field's offset checked at compile time, and has a `from_bytes` that parses a map value.
#![warn(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/intf.rs"));

/// The `N` bytes at `at` in `bytes`. The generated parsers call it only with the offsets of
/// their fields, all inside `bytes`.
fn field<const N: usize, const S: usize>(bytes: &[u8; S], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

#[cfg(test)]
#[path = "../build/parse.rs"]
mod parse;

#[cfg(test)]
mod tests {
    use super::parse::{parse, Item};
    use super::*;

    #[test]
    fn the_header_becomes_these_items() {
        assert_eq!(TLD_REC_PRIORITY, 1u32);
        assert_eq!(TLD_REC_LATENCY, 2u32);
        assert_eq!(TLD_REC_FAST_PATH, 4u32);
        assert_eq!(TLD_REC_CRITICAL, 8u32);
        assert_eq!(TldSchedRecord::SIZE, 72);
        assert_eq!(TldSchedStats::SIZE, 112);
    }

    #[test]
    fn parses_a_record() {
        let mut b = vec![0u8; TldSchedRecord::SIZE];
        b[0..4].copy_from_slice(&7i32.to_ne_bytes());
        b[4..8].copy_from_slice(&(-3i32).to_ne_bytes());
        b[12..16].copy_from_slice(&2u32.to_ne_bytes());
        b[64..72].copy_from_slice(&99u64.to_ne_bytes());
        let r = TldSchedRecord::from_bytes(&b).unwrap();
        assert_eq!(
            (r.tgid, r.priority, r.class, r.before_change_ns),
            (7, -3, 2, 99)
        );
        assert!(TldSchedRecord::from_bytes(&b[..71]).is_none());
        b.push(0xff);
        assert_eq!(TldSchedRecord::from_bytes(&b), Some(r));
    }

    #[test]
    fn parses_counters() {
        let bytes: Vec<u8> = (1..=14u64).flat_map(|v| v.to_ne_bytes()).collect();
        let s = TldSchedStats::from_bytes(&bytes).unwrap();
        assert_eq!((s.enqueues, s.preempted, s.exec_clears), (1, 7, 14));
        assert!(TldSchedStats::from_bytes(&bytes[..111]).is_none());
    }

    #[test]
    fn accepts_the_supported_subset() {
        let items = parse(
            "/* a guard */\n#ifndef G\n#define G\n\
             #define A 3 /* three */\n#define B (1ULL << 40)\n#define C 0x10U\n\
             /* Doc. */\nstruct s_t {\n\tu8 a; /* first */\n\t__u64 b;\n\ts16 c;\n};\n\
             _Static_assert(sizeof(struct s_t) == 24, \"s_t\");\n#endif\n",
        )
        .unwrap();
        assert_eq!(items.len(), 4);
        assert!(matches!(&items[0],
            Item::Const { name, rust_type: "i32", value: 3, doc } if name == "A" && doc == "three"));
        assert!(
            matches!(&items[1], Item::Const { rust_type: "u64", value, .. } if *value == 1 << 40)
        );
        assert!(matches!(
            &items[2],
            Item::Const {
                rust_type: "u32",
                value: 16,
                ..
            }
        ));
        let Item::Struct(s) = &items[3] else {
            panic!("{items:?}")
        };
        assert_eq!((s.rust_name().as_str(), s.doc.as_str()), ("ST", "Doc."));
        assert_eq!(s.layout(), (vec![0, 8, 16], 24));
        assert_eq!(s.asserted_size, Some(24));
        assert_eq!(s.fields[0].doc, "first");

        let rust = super::parse::to_rust(&items);
        for line in [
            "pub const A: i32 = 0x3;",
            "pub const B: u64 = 0x10000000000;",
            "#[doc = \" three\"]",
            "pub struct ST {",
            "    pub b: u64,",
            "    pub const SIZE: usize = 24;",
            "            c: i16::from_ne_bytes(crate::field(bytes, 16)),",
            "const _: () = assert!(::core::mem::offset_of!(ST, c) == 16);",
        ] {
            assert!(rust.lines().any(|l| l == line), "{line:?} not in:\n{rust}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for (src, why) in [
            ("enum e { A };", "unsupported construct"),
            ("#include \"x.h\"", "#include is not supported"),
            ("#define A (1 << 31)", "overflows"),
            ("#define A 1 + 2", "unexpected character '+'"),
            ("#define A (2)", "only an integer literal"),
            ("#define A 5000000000U", "does not fit"),
            ("#define A 010", "octal"),
            ("#define A 1F", "bad integer"),
            ("#define A", "without a value"),
            ("struct s { int a; };", "unsupported field type `int`"),
            ("struct s { u32 a[2]; };", "expected `;`"),
            ("struct s { u32 a; u32 a; };", "field a twice"),
            ("struct s { u32 a; }", "unexpected end"),
            (
                "struct s { u32 a; };\n_Static_assert(sizeof(struct s) == 8, \"s\");",
                "says 8",
            ),
            (
                "_Static_assert(sizeof(struct t) == 8, \"t\");",
                "not defined above",
            ),
            ("#ifndef G\n#define G\n", "unterminated #ifndef"),
            ("/* open", "unterminated comment"),
            ("u32 x;", "unsupported construct"),
            ("#if 1\n#endif", "#if is not supported"),
        ] {
            let err = parse(src).expect_err(src);
            assert!(err.contains(why), "{src:?}: {err}");
        }
    }
}
