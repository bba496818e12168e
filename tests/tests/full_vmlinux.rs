//! A full `vmlinux.h` from `tld-bpf-build` (`write_vmlinux`, `Builder::vmlinux`): dumped from the
//! running kernel's BTF with bpftool, or taken from a path, it carries the types a program needs
//! beyond `tld_vmlinux.h` (here `struct pt_regs`, to read a syscall's arguments), the generated
//! header takes it from the include path, and the program loads and reads both the syscall's
//! argument and the thread's hint on the real kernel. Bad sources are clear errors.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use libbpf_rs::{MapCore, MapFlags};
use tld_bpf_build::{write_vmlinux, Builder, Error, Vmlinux};
use tld_tests::{bpf_required, gettid, VALUE1};

/// Mirror of `struct seen` in `bpf/tld_syscall_args.bpf.c`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    tid: i32,
    init_ret: i32,
    nr: i64,
    arg2: u64,
    value1: i64,
    hits: u64,
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tld-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A full vmlinux.h of the running kernel, or `None` (with the reason printed) when bpftool is
/// missing and BPF is not required.
fn running_kernel(dir: &Path) -> Option<PathBuf> {
    match write_vmlinux(&Vmlinux::RunningKernel, dir) {
        Ok(dir) => Some(dir),
        Err(e) if !bpf_required() => {
            eprintln!("SKIPPED: {e}");
            None
        }
        Err(e) => panic!("TLD_REQUIRE_BPF=1 but no vmlinux.h: {e}"),
    }
}

#[test]
fn a_full_vmlinux_h_comes_from_the_kernel_a_btf_file_or_a_path() {
    let root = scratch("vmlinux-sources");
    let Some(dir) = running_kernel(&root.join("kernel")) else {
        return;
    };
    assert_eq!(dir, root.join("kernel"));
    let text = std::fs::read_to_string(dir.join("vmlinux.h")).unwrap();
    assert!(text.contains("#ifndef __VMLINUX_H__"), "not a vmlinux.h");
    assert!(text.contains("struct pt_regs {"), "no struct pt_regs");

    // The same BTF as a file, and the header from a path: the same text.
    let from_btf = write_vmlinux(
        &Vmlinux::Btf(tld_bpf_build::KERNEL_BTF.into()),
        &root.join("btf"),
    )
    .unwrap();
    let from_path =
        write_vmlinux(&Vmlinux::Header(dir.join("vmlinux.h")), &root.join("path")).unwrap();
    for other in [from_btf, from_path] {
        assert!(std::fs::read_to_string(other.join("vmlinux.h")).unwrap() == text);
    }

    // Bad sources say what is wrong.
    let missing = root.join("no-such-file");
    let e = write_vmlinux(&Vmlinux::Btf(missing.clone()), &root.join("x")).unwrap_err();
    assert!(
        matches!(e, Error::Vmlinux { .. }) && e.to_string().contains("no-such-file"),
        "{e}"
    );
    let e = write_vmlinux(&Vmlinux::Header(missing), &root.join("x")).unwrap_err();
    assert!(e.to_string().contains("reading"), "{e}");
    let not_one = root.join("not_vmlinux.h");
    std::fs::write(&not_one, "struct x { int y; };\n").unwrap();
    let e = write_vmlinux(&Vmlinux::Header(not_one), &root.join("x")).unwrap_err();
    assert!(e.to_string().contains("is not a vmlinux.h"), "{e}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_program_reads_syscall_arguments_and_hints_with_a_full_vmlinux_h() {
    let root = scratch("vmlinux-program");
    let Some(vmlinux) = running_kernel(&root.join("vmlinux")) else {
        return;
    };
    let out = Path::new(env!("OUT_DIR"));
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bpf/tld_syscall_args.bpf.c");
    let object = root.join("tld_syscall_args.bpf.o");
    tld_bpf_build::compile_object(&source, &[&vmlinux, out], &root.join("libbpf"), &object)
        .unwrap_or_else(|e| panic!("it does not compile against the full vmlinux.h:\n{e}"));

    // The same source through the Builder, into a skeleton: it builds.
    let built = Builder::new(&source)
        .out_dir(root.join("builder"))
        .vmlinux(Vmlinux::Header(vmlinux.join("vmlinux.h")))
        .build()
        .unwrap_or_else(|e| panic!("Builder::vmlinux: {e}"));
    assert!(built.exists());
    assert!(root.join("builder/tld-vmlinux/vmlinux.h").exists());

    // Without it, tld_vmlinux.h lacks struct pt_regs: the program does not compile.
    let e = tld_bpf_build::compile_check(&source, &[out], &root.join("libbpf"))
        .expect_err("it compiles against tld_vmlinux.h");
    assert!(e.contains("expected the full vmlinux.h"), "{e}");

    let Some(obj) = load(&object) else {
        return;
    };
    let map = obj
        .maps()
        .find(|m| m.name() == "tld_data_map")
        .expect("tld_data_map");
    tld_runtime::connect(map.as_fd()).expect("connect");
    let link = obj
        .progs_mut()
        .find(|p| p.name() == "on_sys_enter")
        .expect("on_sys_enter")
        .attach()
        .expect("attach tp_btf/sys_enter");

    VALUE1.set(4242);
    let seen_map = obj
        .maps()
        .find(|m| m.name() == "seen_map")
        .expect("seen_map");
    let watch = Seen {
        tid: gettid(),
        nr: libc::SYS_getpriority,
        ..Seen::default()
    };
    // SAFETY: `Seen` is repr(C) integers without padding; the slice covers exactly `watch`.
    let bytes = unsafe {
        std::slice::from_raw_parts((&watch as *const Seen).cast::<u8>(), size_of::<Seen>())
    };
    seen_map
        .update(&0u32.to_ne_bytes(), bytes, MapFlags::ANY)
        .unwrap();
    // SAFETY: getpriority takes two integers; `who` names no process, which is fine here.
    unsafe { libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0x7eed) };
    drop(link);
    let got = seen_map
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .unwrap()
        .unwrap();
    // SAFETY: the map's value is one `struct seen`, mirrored by `Seen`.
    let got = unsafe { got.as_ptr().cast::<Seen>().read_unaligned() };
    assert_eq!(
        (got.hits, got.arg2, got.init_ret, got.value1),
        (1, 0x7eed, 0, 4242),
        "{got:?}"
    );
    std::fs::remove_dir_all(&root).ok();
}

/// Loads the object, or `None` when BPF is unavailable and not required.
fn load(object: &Path) -> Option<libbpf_rs::Object> {
    let open = libbpf_rs::ObjectBuilder::default()
        .open_file(object)
        .expect("open the object");
    match open.load() {
        Ok(obj) => Some(obj),
        Err(e) if !bpf_required() => {
            eprintln!("SKIPPED: the program does not load here: {e}");
            None
        }
        Err(e) => panic!("TLD_REQUIRE_BPF=1 but the program does not load: {e}"),
    }
}
