//! Just enough of a BTF reader to tell whether a map's value is the task local data layout, and
//! how large the two pages it points at are.
//!
//! The value of `tld_data_map` is `struct { struct X __uptr *data; struct Y __uptr *meta; }`.
//! In BTF each field is a `PTR` to a `TYPE_TAG "uptr"` to a struct. The kernel pins
//! `sizeof(X)` bytes for `data` and `sizeof(Y)` for `meta`, and those are the bytes a BPF program
//! may read through them: the inspector's iterator copies exactly that many.
//!
//! The parser is bounded and never panics: every offset is checked against the buffer.

/// Sizes of the two pages an element of a task local data map points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UptrLayout {
    /// `sizeof` the data pointer's pointee (a page, 4096 bytes, for every known writer).
    pub data_size: u32,
    /// `sizeof` the meta pointer's pointee (4036 bytes on 4 KiB pages).
    pub meta_size: u32,
}

impl UptrLayout {
    /// The layout of every known writer on pages of `page_size` bytes: a page of data, and a
    /// metadata page of `4 + 64 * (page_size / 64 - 1)` bytes.
    pub fn standard(page_size: u32) -> UptrLayout {
        UptrLayout {
            data_size: page_size,
            meta_size: 4 + 64 * (page_size / 64 - 1),
        }
    }
}

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// One type: the fixed part, plus the members of a struct or union.
#[derive(Debug, Clone)]
struct Type {
    kind: u32,
    name_off: u32,
    /// The size (struct, union, int, ...) or the referenced type id (ptr, typedef, ...).
    size_or_type: u32,
    /// `(name_off, type id, offset in bits)` for each member of a struct or union.
    members: Vec<(u32, u32, u32)>,
}

/// A parsed BTF object.
#[derive(Debug, Clone)]
pub struct Btf {
    /// Types by id; id 0 (`void`) is not stored, so type `id` is `types[id - 1]`.
    types: Vec<Type>,
    strings: Vec<u8>,
}

/// Little helper to read native-endian integers at checked offsets.
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

impl Btf {
    /// Parses raw BTF as the kernel hands it out (`BPF_OBJ_GET_INFO_BY_FD` on a BTF fd).
    pub fn parse(b: &[u8]) -> Result<Btf, String> {
        let bad = |what: &str| format!("malformed BTF: {what}");
        let magic = b
            .get(0..2)
            .map(|m| u16::from_ne_bytes([m[0], m[1]]))
            .ok_or_else(|| bad("too short"))?;
        if magic != MAGIC {
            return Err(bad("bad magic"));
        }
        let hdr_len = u32_at(b, 4).ok_or_else(|| bad("short header"))? as usize;
        let field = |at| u32_at(b, at).ok_or_else(|| bad("short header"));
        let (type_off, type_len) = (field(8)? as usize, field(12)? as usize);
        let (str_off, str_len) = (field(16)? as usize, field(20)? as usize);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            b.get(start..start.checked_add(len)?)
        };
        let types = section(type_off, type_len).ok_or_else(|| bad("type section"))?;
        let strings = section(str_off, str_len)
            .ok_or_else(|| bad("string section"))?
            .to_vec();

        let mut parsed = Vec::new();
        let mut at = 0usize;
        while at < types.len() {
            let word = |i: usize| u32_at(types, at + 4 * i).ok_or_else(|| bad("truncated type"));
            let (name_off, info, size_or_type) = (word(0)?, word(1)?, word(2)?);
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let kflag = info >> 31 == 1;
            at += 12;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                other => return Err(bad(&format!("unknown kind {other}"))),
            };
            let mut members = Vec::new();
            if kind == KIND_STRUCT || kind == KIND_UNION {
                for m in 0..vlen {
                    let base = at + 12 * m;
                    let get = |i: usize| u32_at(types, base + 4 * i).ok_or_else(|| bad("member"));
                    let offset = get(2)?;
                    // With kflag, the low 24 bits are the offset and the high 8 a bitfield size.
                    let bits = if kflag { offset & 0x00ff_ffff } else { offset };
                    members.push((get(0)?, get(1)?, bits));
                }
            }
            at = at
                .checked_add(extra)
                .filter(|&end| end <= types.len())
                .ok_or_else(|| bad("truncated type"))?;
            parsed.push(Type {
                kind,
                name_off,
                size_or_type,
                members,
            });
        }
        Ok(Btf {
            types: parsed,
            strings,
        })
    }

    fn get(&self, id: u32) -> Option<&Type> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    fn name(&self, off: u32) -> &str {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("?")
    }

    /// Follows typedefs and const/volatile/restrict qualifiers, at most a few dozen deep.
    fn skip_modifiers(&self, mut id: u32) -> Option<(u32, &Type)> {
        for _ in 0..32 {
            let t = self.get(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT => id = t.size_or_type,
                _ => return Some((id, t)),
            }
        }
        None
    }

    /// The size of the struct a `__uptr` pointer of type `ptr` points at, or why it is not one.
    fn uptr_pointee_size(&self, ptr: u32) -> Result<u32, String> {
        let (_, t) = self
            .skip_modifiers(ptr)
            .ok_or("a type id that is not in the BTF")?;
        if t.kind != KIND_PTR {
            return Err("not a pointer".into());
        }
        let tag = self
            .get(t.size_or_type)
            .ok_or("a pointer to a type that is not in the BTF")?;
        if tag.kind != KIND_TYPE_TAG || self.name(tag.name_off) != "uptr" {
            return Err("a pointer without the uptr tag (was it compiled with clang < 19?)".into());
        }
        let (_, pointee) = self
            .skip_modifiers(tag.size_or_type)
            .ok_or("a uptr to a type that is not in the BTF")?;
        match pointee.kind {
            KIND_STRUCT | KIND_UNION if pointee.size_or_type > 0 => Ok(pointee.size_or_type),
            KIND_FWD => Err(format!(
                "a uptr to struct {}, which the BTF only declares",
                self.name(pointee.name_off)
            )),
            _ => Err("a uptr to something other than a struct".into()),
        }
    }

    /// Checks that type `value` is the value of a task local data map, and returns the sizes of
    /// the two pages its elements point at.
    pub fn uptr_layout(&self, value: u32) -> Result<UptrLayout, String> {
        let (_, t) = self
            .skip_modifiers(value)
            .ok_or_else(|| format!("the value type {value} is not in the map's BTF"))?;
        if t.kind != KIND_STRUCT {
            return Err("the value is not a struct".into());
        }
        let field = |bit_offset: u32, what: &str| {
            let (_, ty, _) = t
                .members
                .iter()
                .find(|m| m.2 == bit_offset)
                .ok_or_else(|| format!("the value has no field at byte {}", bit_offset / 8))?;
            self.uptr_pointee_size(*ty)
                .map_err(|e| format!("the value's {what} field is {e}"))
        };
        Ok(UptrLayout {
            data_size: field(0, "first")?,
            meta_size: field(64, "second")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds raw BTF from (kind, name, size_or_type, vlen, extra words) tuples.
    fn build(types: &[(u32, &str, u32, u32, &[u32])]) -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut section = Vec::new();
        for (kind, name, size_or_type, vlen, extra) in types {
            let name_off = if name.is_empty() {
                0
            } else {
                let off = strings.len() as u32;
                strings.extend_from_slice(name.as_bytes());
                strings.push(0);
                off
            };
            for w in [name_off, kind << 24 | vlen, *size_or_type]
                .iter()
                .chain(extra.iter())
            {
                section.extend_from_slice(&w.to_ne_bytes());
            }
        }
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_ne_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            section.len() as u32,
            section.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        b.extend_from_slice(&section);
        b.extend_from_slice(&strings);
        b
    }

    fn value_btf(tag: &str) -> Vec<u8> {
        build(&[
            (KIND_STRUCT, "tld_data_u", 4096, 0, &[]), // 1
            (KIND_STRUCT, "tld_meta_u", 4036, 0, &[]), // 2
            (KIND_TYPE_TAG, tag, 1, 0, &[]),           // 3
            (KIND_PTR, "", 3, 0, &[]),                 // 4
            (KIND_TYPE_TAG, tag, 2, 0, &[]),           // 5
            (KIND_PTR, "", 5, 0, &[]),                 // 6
            (KIND_STRUCT, "tld_map_value", 16, 2, &[0, 4, 0, 0, 6, 64]), // 7
            (KIND_TYPEDEF, "value_t", 7, 0, &[]),      // 8
        ])
    }

    #[test]
    fn finds_the_page_sizes() {
        let btf = Btf::parse(&value_btf("uptr")).unwrap();
        assert_eq!(btf.uptr_layout(8), Ok(UptrLayout::standard(4096)));
        assert_eq!(btf.uptr_layout(7), Ok(UptrLayout::standard(4096)));
    }

    #[test]
    fn refuses_pointers_without_the_tag() {
        let btf = Btf::parse(&value_btf("kptr")).unwrap();
        let e = btf.uptr_layout(7).unwrap_err();
        assert!(e.contains("without the uptr tag"), "{e}");
        assert!(btf.uptr_layout(1).unwrap_err().contains("no field"));
        assert!(btf
            .uptr_layout(99)
            .unwrap_err()
            .contains("not in the map's BTF"));
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error() {
        let good = value_btf("uptr");
        for len in 0..good.len() {
            // Never panics; a cut inside the string section may still parse.
            let _ = Btf::parse(&good[..len]);
        }
        assert!(Btf::parse(&good[..good.len() - 40]).is_err());
        assert!(Btf::parse(&[0xff; 64]).is_err());
    }
}
