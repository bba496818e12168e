//! Writing generated files so that builds that depend on them stay fresh.

use std::path::Path;

/// Writes `text` to `path` unless the file already holds exactly that, so that its modification
/// time (and every build step that depends on it) changes only with its contents.
///
/// The text goes to a temporary file next to `path`, which is then renamed over it: a
/// concurrent reader, such as another build script using the same directory, sees the old
/// file or the new one, never a part of it.
pub fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_same_text_leaves_the_file_alone() {
        let dir = std::env::temp_dir().join(format!("tld-wire-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.h");
        write_if_changed(&path, "one").unwrap();
        let ino = std::fs::metadata(&path).unwrap().ino();
        write_if_changed(&path, "one").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().ino(),
            ino,
            "not rewritten"
        );
        write_if_changed(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), ino, "replaced");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
