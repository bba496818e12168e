//! The BPF fixture (a pinned `tld_data_map` of each generation and a program that writes into
//! pages), and skipping the tests that need it where it cannot load.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject, ProgramInput};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tld_cli_fixture.skel.rs"));
}
use skel::{TldCliFixtureSkel, TldCliFixtureSkelBuilder};

// ---------------------------------------------------------------------------------------------
// Privileges and skipping.

/// Whether kernel tests must run (`TLD_REQUIRE_BPF=1`, as in CI).
pub fn bpf_required() -> bool {
    std::env::var("TLD_REQUIRE_BPF").is_ok_and(|v| v == "1")
}

/// Skips the test after saying why, or fails it under `TLD_REQUIRE_BPF=1`.
pub fn skip(test: &str, why: &str) {
    if bpf_required() {
        panic!("{test}: TLD_REQUIRE_BPF=1 but {why}");
    }
    eprintln!("SKIPPED {test}: {why}; set TLD_REQUIRE_BPF=1 to make this a failure");
}

// ---------------------------------------------------------------------------------------------
// The BPF fixture.

/// The fixture object, loaded, with its map pinned under a name unique to this test process.
pub struct Fixture {
    skel: TldCliFixtureSkel<'static>,
    /// Where the 7.x map is pinned.
    pin: PathBuf,
    /// Where the 6.18 map is pinned.
    pin_618: PathBuf,
}

/// Mirrors `struct write_ctx` of the fixture.
#[repr(C)]
#[derive(Clone, Copy)]
struct WriteCtx {
    tid: i32,
    which: u32,
    offset: u32,
    len: u32,
    bytes: [u8; 64],
    ret: i64,
}

/// Which page [`Fixture::write`] writes.
#[derive(Clone, Copy, Debug)]
pub enum Page {
    /// The data page.
    Data = 0,
    /// The metadata page.
    Meta = 1,
}

static LOG: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn log(_: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut l) = LOG.lock() {
        l.push_str(&msg);
    }
}

impl Fixture {
    /// Loads the fixture and pins its map, or says why not and returns `None` (a failure under
    /// `TLD_REQUIRE_BPF=1`).
    pub fn load(test: &str) -> Option<Fixture> {
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let previous = libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, log)));
        let result = TldCliFixtureSkelBuilder::default()
            .open(storage)
            .and_then(|o| o.load());
        libbpf_rs::set_print(previous);
        let skel = match result {
            Ok(skel) => skel,
            Err(e) => {
                let log = LOG.lock().unwrap().clone();
                skip(
                    test,
                    &format!(
                        "the BPF fixture does not load ({e}); these tests need root (or \
                         CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN) on Linux >= 6.13\n{log}"
                    ),
                );
                return None;
            }
        };
        let dir = Path::new("/sys/fs/bpf");
        if let Err(e) = ensure_bpffs(dir) {
            skip(test, &format!("bpffs is not mounted at /sys/fs/bpf: {e}"));
            return None;
        }
        remove_stale_pins(dir);
        let pin = dir.join(format!("tld_cli_test_{test}_{}", std::process::id()));
        let _ = std::fs::remove_file(&pin);
        let c = std::ffi::CString::new(pin.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and an open fd.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_obj_pin(
                skel.maps.tld_data_map.as_fd().as_raw_fd(),
                c.as_ptr(),
            )
        };
        assert_eq!(rc, 0, "pinning at {}", pin.display());
        // The 6.18 map next to it.
        let pin_618 = dir.join(format!("tld_cli_test_618_{test}_{}", std::process::id()));
        let _ = std::fs::remove_file(&pin_618);
        let c = std::ffi::CString::new(pin_618.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and an open fd.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_obj_pin(
                skel.maps.tld_data_map_618.as_fd().as_raw_fd(),
                c.as_ptr(),
            )
        };
        assert_eq!(rc, 0, "pinning at {}", pin_618.display());
        Some(Fixture { skel, pin, pin_618 })
    }

    /// Where the map is pinned (the 7.x generation).
    pub fn pin(&self) -> &Path {
        &self.pin
    }

    /// Where the fixture's map of the 6.18 generation is pinned.
    pub fn pin_618(&self) -> &Path {
        &self.pin_618
    }

    /// The map's id.
    pub fn map_id(&self) -> u32 {
        self.skel
            .maps
            .tld_data_map
            .info()
            .expect("map info")
            .info
            .id
    }

    /// The id of another map of the fixture, which is not a task local data map (an array).
    pub fn other_map_id(&self) -> u32 {
        self.skel.maps.bss.info().expect("map info").info.id
    }

    /// Has BPF write `bytes` at `offset` of thread `tid`'s page; returns the program's result.
    pub fn write(&self, tid: i32, page: Page, offset: usize, bytes: &[u8]) -> i64 {
        let mut ctx = WriteCtx {
            tid,
            which: page as u32,
            offset: offset as u32,
            len: bytes.len() as u32,
            bytes: [0; 64],
            ret: 1,
        };
        ctx.bytes[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: WriteCtx is plain integers, and the slice covers exactly `ctx`.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(
                (&mut ctx as *mut WriteCtx).cast::<u8>(),
                std::mem::size_of::<WriteCtx>(),
            )
        };
        let input = ProgramInput {
            context_in: Some(buf),
            ..ProgramInput::default()
        };
        self.skel
            .progs
            .write_page
            .test_run(input)
            .expect("run write_page");
        ctx.ret
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pin);
        let _ = std::fs::remove_file(&self.pin_618);
    }
}

/// Removes pins of test processes that are gone: `tld_cli_test_<test>_<pid>`.
fn remove_stale_pins(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name
            .strip_prefix("tld_cli_test_")
            .and_then(|rest| rest.rsplit('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Mounts bpffs on `dir` unless it already is one.
fn ensure_bpffs(dir: &Path) -> Result<(), String> {
    const BPF_FS_MAGIC: i64 = 0xcafe4a11;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and a writable statfs.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    // SAFETY: NUL-terminated strings, no data argument.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            c.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}
