//! Copies of the runtime in one Rust process: a Rust plugin loaded with `dlopen(RTLD_LOCAL)`
//! joins the executable's runtime (its static hints start at their initializers in threads
//! that existed before it loaded), and a copy that meets a runtime of another protocol keeps
//! its hints to itself and never registers a thread.

use std::ffi::CString;
use std::os::fd::AsFd;

use tld_runtime::{Connection, Error, Sharing};
use tld_tests::c;
use tld_tests::*;

/// `struct plugin_info` (`tests/c/plugin.h`).
#[repr(C)]
#[derive(Debug)]
struct PluginInfo {
    sharing: i32,
    connected: i32,
    parts: u32,
    hints: u32,
    published_keys: u32,
    live_threads: u32,
    runtime_id: u64,
    problem: [u8; 256],
}

/// The plugin's exported function `name`.
///
/// # Safety
/// `F` must be the function's type.
unsafe fn function<F: Copy>(handle: *mut libc::c_void, name: &str) -> F {
    let name = CString::new(name).unwrap();
    // SAFETY: `handle` is a live handle from dlopen; the name is NUL-terminated.
    let f = unsafe { libc::dlsym(handle, name.as_ptr()) };
    assert!(!f.is_null(), "the plugin exports {name:?}");
    assert_eq!(
        std::mem::size_of::<F>(),
        std::mem::size_of::<*mut libc::c_void>()
    );
    // SAFETY: the caller's promise: `F` is a function pointer of the symbol's type.
    unsafe { std::mem::transmute_copy(&f) }
}

#[test]
fn a_rust_plugin_joins_the_executables_runtime() {
    let test = "a_rust_plugin_joins_the_executables_runtime";
    if role().is_some() {
        return;
    }
    let Some(skel) = c::load_c(test) else {
        return;
    };
    tld_runtime::connect(skel.maps.tld_data_map.as_fd()).expect("connect");
    VALUE1.set(5);
    let path = CString::new(c::artifacts().plugin_a.to_str().unwrap()).unwrap();
    // SAFETY: loading the test plugin runs no initializer that could conflict with this test.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen of the plugin");
    type PluginFns = (
        extern "C" fn(u64, u32),
        unsafe extern "C" fn(*mut PluginInfo),
    );
    // SAFETY: the types of tests/c/plugin.h.
    let (set, info): PluginFns = unsafe {
        (
            function(handle, "plugin_a_set"),
            function(handle, "plugin_a_info"),
        )
    };
    let mut plugin = std::mem::MaybeUninit::<PluginInfo>::uninit();
    // SAFETY: `plugin` has room for the struct, which the plugin writes whole.
    let plugin = unsafe {
        info(plugin.as_mut_ptr());
        plugin.assume_init()
    };
    let ours = tld_runtime::status();
    assert_eq!(ours.sharing, Sharing::Serving, "{ours}");
    assert_eq!(ours.parts, 2, "{ours}");
    assert_eq!(
        (
            plugin.sharing,
            plugin.connected,
            plugin.parts,
            plugin.runtime_id
        ),
        (1, 1, 2, ours.runtime_id),
        "{plugin:?}"
    );
    // This thread had its page before the plugin loaded: the plugin's hint starts at its
    // initializer there too, next to the executable's.
    let r = run(&skel.progs.tld_c_read, c::CRead::default());
    assert_eq!(r.init_ret, 0);
    assert!(r.found & c::found::PLUGIN_A_COUNT != 0, "{r:?}");
    assert_eq!(r.plugin_a_count, 7);
    set(99, 1);
    assert_eq!(
        run(&skel.progs.tld_c_read, c::CRead::default()).plugin_a_count,
        99
    );
    assert_eq!(VALUE1.get(), 5);
}

/// Runs in a child: before the runtime is used, a table of protocol 999 is mapped where
/// copies of the runtime look for one.
fn isolated_child() {
    use tld_runtime::rendezvous::{Header, ADDRESSES, MAGIC, NAME, PROTOCOL};
    let header = Header {
        magic: MAGIC,
        protocol: 999,
        header_size: std::mem::size_of::<Header>() as u32,
        table: 0,
        pid: 0,
        reserved: 0,
    };
    let name = CString::new(NAME).unwrap();
    // SAFETY: the memfd is new and ours; `header` is plain data written into it, which is then
    // mapped at an address where nothing is mapped (MAP_FIXED_NOREPLACE).
    unsafe {
        let fd = libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, 4096), 0);
        let bytes = std::slice::from_raw_parts(
            (&header as *const Header).cast::<u8>(),
            std::mem::size_of::<Header>(),
        );
        assert_eq!(
            libc::pwrite(fd, bytes.as_ptr().cast(), bytes.len(), 0),
            bytes.len() as isize
        );
        let p = libc::mmap(
            ADDRESSES[0] as usize as *mut libc::c_void,
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_FIXED_NOREPLACE,
            fd,
            0,
        );
        assert_eq!(p as u64, ADDRESSES[0]);
    }
    let skel = load("isolated").expect("loaded by the parent");
    VALUE1.set(3);
    assert_eq!(VALUE1.get(), 3, "hints work as thread-locals");
    let status = tld_runtime::status();
    let other = Error::OtherRuntime {
        protocol: 999,
        supported: PROTOCOL,
    };
    assert_eq!(
        status.sharing,
        Sharing::Isolated {
            reason: other.clone()
        },
        "{status}"
    );
    assert_eq!(
        status.connection,
        Connection::Detached {
            reason: other.clone()
        }
    );
    assert!(status.to_string().contains("protocol 999"), "{status}");
    // It never registers a thread, whatever it is asked.
    assert_eq!(
        tld_runtime::connect(skel.maps.tld_data_map.as_fd()),
        Err(other.clone())
    );
    assert_eq!(tld_runtime::thread_init(), Err(other));
    assert_eq!(bpf_read(&skel).init_ret, -61, "-ENODATA: no element");
    std::thread::spawn(|| VALUE1.set(4)).join().unwrap();
    println!("isolated as expected");
}

#[test]
fn a_copy_that_meets_another_protocol_stays_isolated_and_registers_nothing() {
    let test = "a_copy_that_meets_another_protocol_stays_isolated_and_registers_nothing";
    if role().as_deref() == Some("isolated") {
        return isolated_child();
    }
    if role().is_some() || load(test).is_none() {
        return;
    }
    let out = rerun(test, "isolated")
        .env("TLD_MAP_PATH", "")
        .output()
        .expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("isolated as expected"),
        "the child failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
