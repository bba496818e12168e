//! When the VM's kernel cannot be had, `tld-vm test` says so: a skip with the reason, or, under
//! `TLD_REQUIRE_BPF=1`, a failure. Uses a mirror that refuses connections and an empty cache, so
//! it needs no network.

use std::process::Command;

fn run(require: &str) -> (Option<i32>, String) {
    let cache = std::env::temp_dir().join(format!(
        "tld-vm-unavailable-{}-{require}",
        std::process::id()
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_tld-vm"))
        .arg("test")
        .env("TLD_VM_CACHE", &cache)
        .env("TLD_VM_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
        .env("TLD_VM_KERNEL", "linux-binary-7.3.4+deb13-cloud-amd64")
        .env("TLD_REQUIRE_BPF", require)
        .output()
        .expect("run tld-vm");
    let _ = std::fs::remove_dir_all(&cache);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn a_kernel_that_cannot_be_had_is_a_clear_skip_or_failure() {
    let (code, text) = run("0");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("SKIPPED VM suite"), "{text}");
    // Whatever is missing first (busybox, cpio, qemu, or here the package lists) is named.
    assert!(
        text.contains("cannot read the package lists")
            || text.contains("is not installed")
            || text.contains("busybox"),
        "{text}"
    );

    let (code, text) = run("1");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAILED") && text.contains("TLD_REQUIRE_BPF=1"),
        "{text}"
    );
}
