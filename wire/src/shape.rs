//! Which `tld_data_map` values mean which generation of the format, and how a wrong one is
//! described.
//!
//! A task local data map is a task storage map with 4-byte keys (a pidfd) whose value is one
//! generation's ([`Generation`]): `{data, meta}`, two `__uptr` pointers (16 bytes, Linux 6.18
//! and scx), or `{data, meta, __u16 start}` (24 bytes, Linux 7.x). Whoever checks a map, the
//! runtime before it registers threads or an inspector before it reads pages, decides with the
//! functions here, and names what it found with the same words.

use crate::format::{Generation, MAP_KEY_SIZE, MAP_VALUE_SIZE, MAP_VALUE_SIZE_7};

/// The value shapes of a task local data map, for messages: `{data, meta} (16 bytes: Linux
/// 6.18, scx) or {data, meta, __u16 start} (24 bytes: Linux 7.x)`.
pub fn expected_values() -> String {
    format!(
        "{{data, meta}} ({MAP_VALUE_SIZE} bytes: Linux 6.18, scx) or {{data, meta, __u16 \
         start}} ({MAP_VALUE_SIZE_7} bytes: Linux 7.x)"
    )
}

/// The generation whose value has `size` bytes, or why no generation's has: a message that
/// starts "its value has `size` bytes".
pub fn generation_of_size(size: usize) -> Result<Generation, String> {
    Generation::from_value_size(size).ok_or_else(|| {
        format!(
            "its value has {size} bytes; a task local data map's value is {}",
            expected_values()
        )
    })
}

/// Whether a map's key of `key_size` bytes is a task local data map's: a message that says
/// what it should be otherwise.
pub fn check_key_size(key_size: usize) -> Result<(), String> {
    if key_size == MAP_KEY_SIZE {
        Ok(())
    } else {
        Err(format!(
            "its key has {key_size} bytes instead of {MAP_KEY_SIZE}"
        ))
    }
}

/// The generation of a map whose keys have `key_size` bytes and whose values have
/// `value_size`, or a message that names both and what they should be.
pub fn generation_of_sizes(key_size: usize, value_size: usize) -> Result<Generation, String> {
    match Generation::from_value_size(value_size) {
        Some(generation) if key_size == MAP_KEY_SIZE => Ok(generation),
        _ => Err(format!(
            "its keys have {key_size} bytes and its values {value_size}; a task local data map \
             has {MAP_KEY_SIZE}-byte keys and values of {}",
            expected_values()
        )),
    }
}

/// What a map's BTF says its value struct is, as far as the generation depends on it. The two
/// pointers at its start are checked separately (they must be `__uptr` pointers to complete
/// structs in both generations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueStruct {
    /// The struct's members.
    pub members: usize,
    /// The struct's size in bytes.
    pub size: usize,
    /// Whether its third member is 7.x's `start`: a 16-bit integer at byte
    /// [`MAP_VALUE_START_OFFSET`](crate::format::MAP_VALUE_START_OFFSET), with every later
    /// member inside the value.
    pub start_member: bool,
}

impl ValueStruct {
    /// The generation of this value: exactly two members in 16 bytes is 6.18's; three or more
    /// in 24 bytes, the third `start`, is 7.x's (members after `start` lie in its padding).
    /// Anything else is no generation's.
    pub fn generation(&self) -> Option<Generation> {
        match (self.members, self.size) {
            (2, MAP_VALUE_SIZE) => Some(Generation::Linux6_18),
            (n, MAP_VALUE_SIZE_7) if n >= 3 && self.start_member => Some(Generation::Linux7),
            _ => None,
        }
    }

    /// The message for a value that is no generation's ([`Self::generation`] is `None`),
    /// naming the shape found: `what` describes the value type (`struct tld_map_value`) and
    /// `members` its members (`{data: a pointer at byte 0, ...}`).
    pub fn mismatch(&self, what: &str, members: &str) -> String {
        format!(
            "its value is {what} of {} bytes, {members}; a task local data map's value is {}",
            self.size,
            expected_values()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_give_the_generation() {
        assert_eq!(generation_of_size(16), Ok(Generation::Linux6_18));
        assert_eq!(generation_of_size(24), Ok(Generation::Linux7));
        for bad in [0, 8, 12, 20, 32, 40, 88, 4096] {
            let err = generation_of_size(bad).unwrap_err();
            assert!(err.contains(&format!("{bad} bytes")), "{err}");
            assert!(err.contains("(24 bytes: Linux 7.x)"), "{err}");
        }
        assert_eq!(generation_of_sizes(4, 24), Ok(Generation::Linux7));
        let err = generation_of_sizes(8, 16).unwrap_err();
        assert!(
            err.starts_with("its keys have 8 bytes and its values 16;"),
            "{err}"
        );
        assert!(check_key_size(4).is_ok());
        assert!(check_key_size(8)
            .unwrap_err()
            .contains("8 bytes instead of 4"));
    }

    #[test]
    fn structs_give_the_generation() {
        let v = |members, size, start_member| ValueStruct {
            members,
            size,
            start_member,
        };
        assert_eq!(v(2, 16, false).generation(), Some(Generation::Linux6_18));
        assert_eq!(v(3, 24, true).generation(), Some(Generation::Linux7));
        assert_eq!(v(4, 24, true).generation(), Some(Generation::Linux7));
        assert_eq!(v(3, 24, false).generation(), None, "no start");
        assert_eq!(v(3, 16, true).generation(), None);
        assert_eq!(v(2, 24, false).generation(), None);
        assert_eq!(v(3, 40, false).generation(), None, "an old cache");
        let err = v(3, 40, false).mismatch("struct tld_map_value", "{data: a pointer at byte 0}");
        assert!(
            err.starts_with("its value is struct tld_map_value of 40 bytes, {data:"),
            "{err}"
        );
    }
}
