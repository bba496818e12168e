//! With a guard (`tld-guard`) stamping a map's elements, the inspector says, per thread, whether
//! its element was registered by its own process. The guard's own program needs BPF
//! trampolines, which this machine may not have: a fixture program named like it
//! (`tld_guard_stamp`) stamps the threads the test chooses, as the guard would.
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{OpenObject, ProgramInput};
use serde_json::Value;
use tld_cli_test_support::{bpf::*, roles::*, run::*};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tld_cli_guard_fixture.skel.rs"));
}

/// Mirror of `struct stamp_ctx`.
#[repr(C)]
#[derive(Clone, Copy)]
struct StampCtx {
    tid: i32,
    wrong: i32,
    ret: i32,
}

const TEST: &str = "each_thread_says_whether_its_own_process_registered_it";

#[test]
fn each_thread_says_whether_its_own_process_registered_it() {
    if let Some(role) = role() {
        return play(&role);
    }
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let skel = match skel::TldCliGuardFixtureSkelBuilder::default()
        .open(storage)
        .and_then(|o| o.load())
    {
        Ok(skel) => skel,
        Err(e) => return skip(TEST, &format!("the guard fixture does not load ({e})")),
    };
    // The guard's key: a secret, then the ready word.
    let mut value = [7u8; 40];
    value[32..].copy_from_slice(&0x3179_656b_6764_6c74u64.to_ne_bytes());
    let key = 0u32;
    // SAFETY: key and value are live buffers of the key map's key (u32) and value (40 bytes).
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_update_elem(
            skel.maps.tld_guard_key.as_fd().as_raw_fd(),
            (&key as *const u32).cast(),
            value.as_ptr().cast(),
            0,
        )
    };
    assert_eq!(rc, 0, "writing the key");
    let pin = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/tld_cli_test_guard_{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&pin);
    let c = std::ffi::CString::new(pin.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and an open fd.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_obj_pin(skel.maps.tld_data_map.as_fd().as_raw_fd(), c.as_ptr())
    };
    assert_eq!(rc, 0, "pinning the guarded map");

    let app = RoleChild::spawn(TEST, "app", &pin);
    let stamp = |tid: i32, wrong: bool| {
        let mut ctx = StampCtx {
            tid,
            wrong: i32::from(wrong),
            ret: 1,
        };
        // SAFETY: StampCtx is plain integers, and the slice covers exactly `ctx`.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(
                (&mut ctx as *mut StampCtx).cast::<u8>(),
                std::mem::size_of::<StampCtx>(),
            )
        };
        skel.progs
            .tld_guard_stamp
            .test_run(ProgramInput {
                context_in: Some(buf),
                ..ProgramInput::default()
            })
            .expect("run the stamp");
        assert_eq!(ctx.ret, 0, "stamping {tid}");
    };
    // The first thread as the guard stamps its own process's element, the second with a wrong
    // stamp, as the guard leaves another process's.
    stamp(app.tids[0], false);
    stamp(app.tids[1], true);

    let out = tld_ok(&[
        "show",
        "--pin",
        pin.to_str().unwrap(),
        &app.pid.to_string(),
        "--json",
    ]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let by = |tid: i32| {
        doc["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tid"] == tid)
            .map(|t| t["registered_by"].clone())
    };
    assert_eq!(by(app.tids[0]), Some(Value::from("own process")), "{doc}");
    assert_eq!(
        by(app.tids[1]),
        Some(Value::from("another process")),
        "{doc}"
    );

    let table = tld_ok(&["ps", "--pin", pin.to_str().unwrap()]);
    assert!(table.contains("REGISTERED BY"), "{table}");
    let text = tld_ok(&["show", "--pin", pin.to_str().unwrap(), &app.pid.to_string()]);
    assert!(
        text.contains("[registered by another process: guarded readers ignore these values]"),
        "{text}"
    );
    assert!(text.contains("[registered by its own process]"), "{text}");
    app.finish();
    let _ = std::fs::remove_file(&pin);
}
