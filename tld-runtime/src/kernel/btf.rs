//! Reading a map's BTF, to check that its value is what the format needs, and which generation
//! of the format it is: `{data, meta}` (Linux 6.18, scx) or `{data, meta, __u16 start}` (Linux
//! 7.x), where `data` and `meta` are `__uptr` pointers.
//!
//! Public for tools that read the format (the `tld` inspector uses it to find how many bytes
//! of each page a BPF program may read); the runtime uses it to refuse look-alike maps.
//!
//! A task storage map whose value is 16 bytes of anything accepts updates, but the kernel pins
//! user pages only for members whose pointer type carries the `uptr` type tag, and only when
//! the pointee is a complete struct (a program that reaches the struct only through the tagged
//! pointer may leave a forward declaration in its BTF, and the kernel then treats the member as
//! a plain integer). Registering a thread in such a map would succeed and pin nothing, so
//! connecting refuses it, with the reason.
//!
//! The BTF comes from the kernel (the object that describes the map's key and value) and is
//! parsed defensively: every read is bounded, and anything malformed is a reason, not a panic.

/// BTF kinds (`BTF_KIND_*` in `<linux/btf.h>`).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

use crate::page::wire::{Generation, MAP_VALUE_START_OFFSET};

const BTF_MAGIC: u16 = 0xeb9f;
/// Modifier chains longer than this are treated as malformed (a loop, or garbage).
const MAX_CHAIN: usize = 32;

/// One type record: its kind, name, `size_or_type`, and its trailing data.
#[derive(Debug, Clone, Copy)]
struct Type<'a> {
    kind: u32,
    name_off: u32,
    vlen: usize,
    size_or_type: u32,
    extra: &'a [u8],
}

/// Sizes of the structs that a task local data map's two pointers point at: what the kernel
/// pins of each page, and what a BPF program may read through the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UptrLayout {
    /// `sizeof` the data pointer's pointee (one page for every known writer).
    pub data_size: u32,
    /// `sizeof` the meta pointer's pointee (4036 bytes on 4 KiB pages).
    pub meta_size: u32,
}

/// What a `tld_data_map`'s value is: the generation of the format it speaks, and what its
/// pointers point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueShape {
    /// `{data, meta}` or `{data, meta, __u16 start}`.
    pub generation: Generation,
    /// The pointees' sizes.
    pub layout: UptrLayout,
}

impl UptrLayout {
    /// The layout of every known writer on pages of `page_size` bytes: a page of data, and
    /// the metadata page's entries ([`crate::page::wire::meta_bytes`]).
    pub fn standard(page_size: u32) -> UptrLayout {
        UptrLayout {
            data_size: page_size,
            meta_size: crate::page::wire::meta_bytes(page_size as usize) as u32,
        }
    }
}

/// Parsed BTF: type records by id (id 0 is `void`), and the string section.
pub struct Btf<'a> {
    types: Vec<Type<'a>>,
    strings: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Btf<'a> {
    /// Parses raw BTF as the kernel returns it.
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>, String> {
        let bad = |what: &str| format!("its BTF is malformed ({what})");
        if u16_at(data, 0) != Some(BTF_MAGIC) {
            return Err(bad("bad magic"));
        }
        let hdr_len = u32_at(data, 4).ok_or_else(|| bad("short header"))? as usize;
        let field = |at| u32_at(data, at).map(|v| v as usize);
        let (type_off, type_len, str_off, str_len) =
            match (field(8), field(12), field(16), field(20)) {
                (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
                _ => return Err(bad("short header")),
            };
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            data.get(start..start.checked_add(len)?)
        };
        let type_data = section(type_off, type_len).ok_or_else(|| bad("type section"))?;
        let strings = section(str_off, str_len).ok_or_else(|| bad("string section"))?;

        let mut types = vec![Type {
            kind: 0,
            name_off: 0,
            vlen: 0,
            size_or_type: 0,
            extra: &[],
        }];
        let mut at = 0;
        while at < type_data.len() {
            let (Some(name_off), Some(info), Some(size_or_type)) = (
                u32_at(type_data, at),
                u32_at(type_data, at + 4),
                u32_at(type_data, at + 8),
            ) else {
                return Err(bad("truncated type"));
            };
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let extra_len = match kind {
                kind::INT | kind::VAR | kind::DECL_TAG => 4,
                kind::ARRAY => 12,
                kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * vlen,
                kind::ENUM | kind::FUNC_PROTO => 8 * vlen,
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => 0,
                other => return Err(bad(&format!("unknown kind {other}"))),
            };
            let extra = type_data
                .get(at + 12..at + 12 + extra_len)
                .ok_or_else(|| bad("truncated type"))?;
            types.push(Type {
                kind,
                name_off,
                vlen,
                size_or_type,
                extra,
            });
            at += 12 + extra_len;
        }
        Ok(Btf { types, strings })
    }

    fn get(&self, id: u32) -> Option<&Type<'a>> {
        self.types.get(id as usize)
    }

    fn name(&self, t: &Type<'_>) -> &str {
        let start = t.name_off as usize;
        let Some(rest) = self.strings.get(start..) else {
            return "";
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    /// Follows typedefs and qualifiers (and type tags, collecting their names) from `id`.
    /// Returns the first other type, with its id.
    fn strip(&self, mut id: u32, tags: &mut Vec<String>) -> Option<(u32, &Type<'a>)> {
        for _ in 0..MAX_CHAIN {
            let t = self.get(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT => {}
                kind::TYPE_TAG => tags.push(self.name(t).to_string()),
                _ => return Some((id, t)),
            }
            id = t.size_or_type;
        }
        None
    }

    /// Describes a type for a message: `struct x`, `__u64`, `pointer`, ...
    fn describe(&self, t: &Type<'_>) -> String {
        let name = self.name(t);
        match t.kind {
            kind::STRUCT => format!("struct {name}"),
            kind::UNION => format!("union {name}"),
            kind::FWD => format!("an incomplete struct {name} (forward declaration)"),
            kind::PTR => "a pointer".into(),
            kind::ARRAY => "an array".into(),
            _ if name.is_empty() => format!("a type of BTF kind {}", t.kind),
            _ => format!("`{name}`"),
        }
    }

    /// Checks that type `value_id` is the value of a task local data map, a struct that starts
    /// with two `__uptr` pointers (at offsets 0 and 8) to complete structs, and returns the
    /// pointees' sizes. Members after those two belong to the BPF program. The error names
    /// every problem found.
    pub fn uptr_layout(&self, value_id: u32) -> Result<UptrLayout, String> {
        let mut tags = Vec::new();
        let Some((_, value)) = self.strip(value_id, &mut tags) else {
            return Err(format!(
                "its value type (BTF id {value_id}) cannot be resolved"
            ));
        };
        if value.kind != kind::STRUCT {
            return Err(format!(
                "its value is {}, not a struct of two __uptr pointers",
                self.describe(value)
            ));
        }
        // What follows the two pointers (7.x's start) is checked by `value_shape`.
        if value.vlen < 2 {
            return Err(format!(
                "its value, {}, has {} members instead of starting with two __uptr pointers \
                 (data, meta)",
                self.describe(value),
                value.vlen
            ));
        }
        let mut problems = Vec::new();
        let mut sizes = [0u32; 2];
        for (i, role) in ["data", "meta"].into_iter().enumerate() {
            let member = &value.extra[i * 12..i * 12 + 12];
            let (Some(name_off), Some(ty), Some(offset)) =
                (u32_at(member, 0), u32_at(member, 4), u32_at(member, 8))
            else {
                return Err("its BTF is malformed (struct member)".into());
            };
            let name = self.string(name_off);
            let label = format!("member {} (`{name}`, the {role} page)", i + 1);
            // A member's offset is in bits (a bitfield's size, if any, sits in the high byte
            // and is 0 for these).
            if offset != (i as u32) * 64 {
                problems.push(format!("{label} is at bit {offset} instead of {}", i * 64));
                continue;
            }
            match self.uptr_pointee_size(ty) {
                Ok(size) => sizes[i] = size,
                Err(p) => problems.push(format!("{label} {p}")),
            }
        }
        if problems.is_empty() {
            Ok(UptrLayout {
                data_size: sizes[0],
                meta_size: sizes[1],
            })
        } else {
            Err(problems.join("; "))
        }
    }

    /// [`Btf::uptr_layout`], and both pointees fit in a page of `page_size` bytes (the kernel
    /// pins a uptr's pointee only within one page).
    pub fn check_tld_value(&self, value_id: u32, page_size: usize) -> Result<(), String> {
        let layout = self.uptr_layout(value_id)?;
        for (role, size) in [("data", layout.data_size), ("meta", layout.meta_size)] {
            if size as usize > page_size {
                return Err(format!(
                    "its {role} pointer points at a struct of {size} bytes, more than a page \
                     ({page_size})"
                ));
            }
        }
        Ok(())
    }

    /// Checks that type `value_id` is one generation's `tld_data_map` value, and that both
    /// pointees fit in a page of `page_size` bytes:
    /// - `{data, meta}`, 16 bytes: [`Generation::Linux6_18`];
    /// - `{data, meta, start}`, 24 bytes, `start` a 16-bit integer at byte 16:
    ///   [`Generation::Linux7`]. Members after `start` are allowed within the 24 bytes (in its
    ///   padding).
    ///
    /// Any other shape is refused, and the error describes the shape found.
    pub fn value_shape(&self, value_id: u32, page_size: usize) -> Result<ValueShape, String> {
        let layout = self.uptr_layout(value_id)?;
        for (role, size) in [("data", layout.data_size), ("meta", layout.meta_size)] {
            if size as usize > page_size {
                return Err(format!(
                    "its {role} pointer points at a struct of {size} bytes, more than a page \
                     ({page_size})"
                ));
            }
        }
        let mut tags = Vec::new();
        let Some((_, value)) = self.strip(value_id, &mut tags) else {
            return Err(format!(
                "its value type (BTF id {value_id}) cannot be resolved"
            ));
        };
        let found = tld_wire::shape::ValueStruct {
            members: value.vlen,
            size: value.size_or_type as usize,
            start_member: value.vlen >= 3 && self.is_start_member(value),
        };
        let generation = found
            .generation()
            .ok_or_else(|| found.mismatch(&self.describe(value), &self.describe_members(value)))?;
        Ok(ValueShape { generation, layout })
    }

    /// Whether the struct's third member is 7.x's `start`: a 16-bit integer at byte 16, with
    /// every later member inside the 24 bytes.
    fn is_start_member(&self, value: &Type<'_>) -> bool {
        let member = |i: usize| -> Option<(u32, u32)> {
            let m = value.extra.get(i * 12..i * 12 + 12)?;
            Some((u32_at(m, 4)?, u32_at(m, 8)?))
        };
        let Some((ty, offset)) = member(2) else {
            return false;
        };
        if offset != (MAP_VALUE_START_OFFSET * 8) as u32 {
            return false;
        }
        let mut tags = Vec::new();
        let is_u16 = self
            .strip(ty, &mut tags)
            .is_some_and(|(_, t)| t.kind == kind::INT && t.size_or_type == 2);
        is_u16
            && (3..value.vlen).all(|i| {
                member(i).is_some_and(|(ty, offset)| {
                    let mut tags = Vec::new();
                    let size = self
                        .strip(ty, &mut tags)
                        .map_or(u32::MAX, |(_, t)| self.size_of(t));
                    // Bitfields keep their size in the high byte; they are not expected here.
                    offset & 0xff00_0000 == 0 && (offset / 8).saturating_add(size) <= 24
                })
            })
    }

    /// The size of a type that has one, for the member check (not pointers' pointees).
    fn size_of(&self, t: &Type<'_>) -> u32 {
        match t.kind {
            kind::INT | kind::STRUCT | kind::UNION | kind::ENUM | kind::ENUM64 | kind::FLOAT => {
                t.size_or_type
            }
            kind::PTR => 8,
            kind::ARRAY => {
                let (Some(elem), Some(n)) = (u32_at(t.extra, 0), u32_at(t.extra, 8)) else {
                    return u32::MAX;
                };
                let mut tags = Vec::new();
                self.strip(elem, &mut tags)
                    .map_or(u32::MAX, |(_, e)| self.size_of(e).saturating_mul(n))
            }
            _ => u32::MAX,
        }
    }

    /// `{data: a pointer at byte 0, meta: a pointer at byte 8, ...}`, for messages.
    fn describe_members(&self, value: &Type<'_>) -> String {
        let mut parts = Vec::new();
        for i in 0..value.vlen.min(8) {
            let Some(m) = value.extra.get(i * 12..i * 12 + 12) else {
                break;
            };
            let (Some(name), Some(ty), Some(offset)) = (u32_at(m, 0), u32_at(m, 4), u32_at(m, 8))
            else {
                break;
            };
            let mut tags = Vec::new();
            let what = self
                .strip(ty, &mut tags)
                .map_or_else(|| "an unknown type".to_string(), |(_, t)| self.describe(t));
            parts.push(format!(
                "{}: {what} at byte {}",
                self.string(name),
                (offset & 0x00ff_ffff) / 8
            ));
        }
        if value.vlen > 8 {
            parts.push(format!("and {} more", value.vlen - 8));
        }
        format!("{{{}}}", parts.join(", "))
    }

    fn string(&self, off: u32) -> &str {
        self.name(&Type {
            kind: 0,
            name_off: off,
            vlen: 0,
            size_or_type: 0,
            extra: &[],
        })
    }

    /// The size of what a member of type `ty` points at, if it is a `__uptr` pointer to a
    /// complete struct.
    fn uptr_pointee_size(&self, ty: u32) -> Result<u32, String> {
        let mut tags = Vec::new();
        let Some((_, ptr)) = self.strip(ty, &mut tags) else {
            return Err("has a type that cannot be resolved".into());
        };
        if ptr.kind != kind::PTR {
            return Err(format!("is {}, not a __uptr pointer", self.describe(ptr)));
        }
        let mut tags = Vec::new();
        let Some((_, pointee)) = self.strip(ptr.size_or_type, &mut tags) else {
            return Err("points at a type that cannot be resolved".into());
        };
        if !tags.iter().any(|t| t == "uptr") {
            return Err(
                "is a plain pointer: it lacks the __uptr tag (btf_type_tag(\"uptr\")), so the \
                 kernel pins nothing (compile the BPF program with clang 19 or later)"
                    .into(),
            );
        }
        if pointee.kind != kind::STRUCT {
            return Err(format!(
                "points at {}; the kernel treats it as a plain integer (the BPF object must \
                 carry the struct's full definition in its BTF)",
                self.describe(pointee)
            ));
        }
        if pointee.size_or_type == 0 {
            return Err(format!("points at {}, of 0 bytes", self.describe(pointee)));
        }
        Ok(pointee.size_or_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds raw BTF from (name, info, size_or_type, extra) records.
    fn build(strings: &[u8], types: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut t = Vec::new();
        for (name, info, sot, extra) in types {
            t.extend(name.to_ne_bytes());
            t.extend(info.to_ne_bytes());
            t.extend(sot.to_ne_bytes());
            t.extend(extra);
        }
        let mut out = Vec::new();
        out.extend(BTF_MAGIC.to_ne_bytes());
        out.extend([1u8, 0]);
        out.extend(24u32.to_ne_bytes());
        out.extend(0u32.to_ne_bytes());
        out.extend((t.len() as u32).to_ne_bytes());
        out.extend((t.len() as u32).to_ne_bytes());
        out.extend((strings.len() as u32).to_ne_bytes());
        out.extend(t);
        out.extend(strings);
        out
    }

    fn member(name: u32, ty: u32, bit: u32) -> Vec<u8> {
        [name, ty, bit]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect()
    }

    const fn info(kind: u32, vlen: u32) -> u32 {
        kind << 24 | vlen
    }

    // Strings: 1 "uptr", 6 "v", 8 "data", 13 "meta", 18 "d", 20 "m"
    const STRINGS: &[u8] = b"\0uptr\0v\0data\0meta\0d\0m\0";

    fn map_value(tagged: bool, pointee_kind: u32) -> Vec<u8> {
        // 1: struct d (4096), 2: struct m (4036), 3: tag uptr -> 1, 4: tag uptr -> 2,
        // 5: ptr -> 3 (or 1), 6: ptr -> 4 (or 2), 7: struct v { 5 data; 6 meta; }
        let pointee = |size| match pointee_kind {
            kind::STRUCT => (info(kind::STRUCT, 0), size),
            k => (info(k, 0), 0),
        };
        let (d_info, d_size) = pointee(4096);
        let (m_info, m_size) = pointee(4036);
        let mut members = member(8, 5, 0);
        members.extend(member(13, 6, 64));
        build(
            STRINGS,
            &[
                (18, d_info, d_size, vec![]),
                (20, m_info, m_size, vec![]),
                (1, info(kind::TYPE_TAG, 0), 1, vec![]),
                (1, info(kind::TYPE_TAG, 0), 2, vec![]),
                (0, info(kind::PTR, 0), if tagged { 3 } else { 1 }, vec![]),
                (0, info(kind::PTR, 0), if tagged { 4 } else { 2 }, vec![]),
                (6, info(kind::STRUCT, 2), 16, members),
            ],
        )
    }

    #[test]
    fn a_value_of_two_uptr_pointers_passes() {
        let data = map_value(true, kind::STRUCT);
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(btf.check_tld_value(7, 4096), Ok(()));
        assert_eq!(btf.uptr_layout(7), Ok(UptrLayout::standard(4096)));
        assert!(
            btf.check_tld_value(7, 2048).is_err(),
            "a pointee larger than a page"
        );
    }

    /// `map_value(true, STRUCT)` with more members after the pointers: (name, type id, bit)
    /// triples over the same types, plus 8: a `__u16` and 9: a `__u64`, and a value of `size`.
    fn map_value_with(extra: &[(u32, u32, u32)], size: u32) -> Vec<u8> {
        let mut members = member(8, 5, 0);
        members.extend(member(13, 6, 64));
        for &(name, ty, bit) in extra {
            members.extend(member(name, ty, bit));
        }
        let vlen = 2 + extra.len() as u32;
        build(
            STRINGS_7,
            &[
                (18, info(kind::STRUCT, 0), 4096, vec![]),
                (20, info(kind::STRUCT, 0), 4036, vec![]),
                (1, info(kind::TYPE_TAG, 0), 1, vec![]),
                (1, info(kind::TYPE_TAG, 0), 2, vec![]),
                (0, info(kind::PTR, 0), 3, vec![]),
                (0, info(kind::PTR, 0), 4, vec![]),
                (6, info(kind::STRUCT, vlen), size, members),
                (28, info(kind::INT, 0), 2, vec![16, 0, 0, 0]),
                (34, info(kind::INT, 0), 8, vec![64, 0, 0, 0]),
            ],
        )
    }

    // STRINGS, then 22 "start", 28 "__u16", 34 "__u64", 40 "cache"
    const STRINGS_7: &[u8] = b"\0uptr\0v\0data\0meta\0d\0m\0start\0__u16\0__u64\0cache\0";

    #[test]
    fn the_two_generations_values_are_told_apart() {
        let six = map_value(true, kind::STRUCT);
        let shape = Btf::parse(&six).unwrap().value_shape(7, 4096).unwrap();
        assert_eq!(shape.generation, Generation::Linux6_18);
        assert_eq!(shape.layout, UptrLayout::standard(4096));

        let seven = map_value_with(&[(22, 8, 128)], 24);
        let shape = Btf::parse(&seven).unwrap().value_shape(7, 4096).unwrap();
        assert_eq!(shape.generation, Generation::Linux7);

        // A member of our own in 7.x's padding (a stamp, say) is still 7.x's value.
        let stamped = map_value_with(&[(22, 8, 128), (40, 8, 144)], 24);
        let shape = Btf::parse(&stamped).unwrap().value_shape(7, 4096).unwrap();
        assert_eq!(shape.generation, Generation::Linux7);
    }

    #[test]
    fn other_shapes_are_refused_and_described() {
        // A cache after the pointers: the shape of earlier versions of our header.
        let cached = map_value_with(&[(40, 9, 128), (22, 9, 192)], 40);
        let err = Btf::parse(&cached)
            .unwrap()
            .value_shape(7, 4096)
            .unwrap_err();
        assert!(err.contains("of 40 bytes"), "{err}");
        assert!(err.contains("cache: `__u64` at byte 16"), "{err}");
        assert!(err.contains("{data, meta, __u16 start}"), "{err}");

        // start of the wrong width, or at the wrong place.
        for (extra, size) in [
            (vec![(22, 9, 128)], 24),
            (vec![(22, 8, 144)], 24),
            (vec![(22, 8, 128), (40, 9, 192)], 32),
        ] {
            let data = map_value_with(&extra, size);
            let err = Btf::parse(&data).unwrap().value_shape(7, 4096).unwrap_err();
            assert!(err.contains("a task local data map's value is"), "{err}");
        }
    }

    #[test]
    fn untagged_pointers_and_forward_declarations_are_named() {
        let data = map_value(false, kind::STRUCT);
        let err = Btf::parse(&data)
            .unwrap()
            .check_tld_value(7, 4096)
            .unwrap_err();
        assert!(err.contains("member 1 (`data`") && err.contains("lacks the __uptr tag"));
        assert!(err.contains("member 2 (`meta`"), "{err}");

        let data = map_value(true, kind::FWD);
        let err = Btf::parse(&data)
            .unwrap()
            .check_tld_value(7, 4096)
            .unwrap_err();
        assert!(err.contains("forward declaration"), "{err}");
    }

    #[test]
    fn a_plain_struct_value_is_refused() {
        let mut members = member(8, 1, 0);
        members.extend(member(13, 1, 64));
        let data = build(
            STRINGS,
            &[
                (0, info(kind::INT, 0), 8, vec![0, 0, 0, 64]),
                (6, info(kind::STRUCT, 2), 16, members),
            ],
        );
        let err = Btf::parse(&data)
            .unwrap()
            .check_tld_value(2, 4096)
            .unwrap_err();
        assert!(err.contains("not a __uptr pointer"), "{err}");
    }

    #[test]
    fn garbage_is_a_reason_not_a_panic() {
        assert!(Btf::parse(&[]).is_err());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0, 200, 0, 0, 0]).is_err());
        let mut data = map_value(true, kind::STRUCT);
        data.truncate(data.len() - 30);
        let _ = Btf::parse(&data).map(|b| b.check_tld_value(7, 4096));
        let data = map_value(true, kind::STRUCT);
        let btf = Btf::parse(&data).unwrap();
        assert!(btf.check_tld_value(99, 4096).is_err());
        assert!(btf.check_tld_value(0, 4096).is_err());
    }
}
