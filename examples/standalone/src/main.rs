//! Sets a hint from Rust, and has the BPF program built by `build.rs` read it back.
//!
//! Needs root (or CAP_BPF + CAP_PERFMON) on Linux 6.13 or later; without them it says why and
//! exits 0, unless `TLD_REQUIRE_BPF=1`.

use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::process::ExitCode;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::ProgramInput;
use standalone_hints::REQUEST_CLASS;

mod skel {
    include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
}

#[repr(C)]
#[derive(Default)]
struct ProbeCtx {
    init_ret: i64,
    request_class: i64,
}

fn main() -> ExitCode {
    REQUEST_CLASS.set(7);

    let mut storage = MaybeUninit::uninit();
    let skel = match skel::ProbeSkelBuilder::default()
        .open(&mut storage)
        .and_then(|open| open.load())
    {
        Ok(skel) => skel,
        Err(e) if std::env::var("TLD_REQUIRE_BPF").as_deref() != Ok("1") => {
            println!("SKIPPED: cannot load the BPF program ({e}); needs root on Linux >= 6.13");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loading the BPF program failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = tld_runtime::connect(skel.maps.tld_data_map.as_fd()) {
        eprintln!("connect: {e}");
        return ExitCode::FAILURE;
    }

    let mut ctx = ProbeCtx::default();
    // SAFETY: ProbeCtx is #[repr(C)] plain integers, valid for any bytes, and the slice covers
    // exactly `ctx`, which outlives it.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            (&mut ctx as *mut ProbeCtx).cast::<u8>(),
            std::mem::size_of::<ProbeCtx>(),
        )
    };
    let input = ProgramInput {
        context_in: Some(bytes),
        ..ProgramInput::default()
    };
    if let Err(e) = skel.progs.read_class.test_run(input) {
        eprintln!("running the BPF program failed: {e:#}");
        return ExitCode::FAILURE;
    }
    if ctx.init_ret != 0 || ctx.request_class != 7 {
        eprintln!(
            "BPF read request_class = {} (bpf_tld_init: {}), not the 7 this thread set",
            ctx.request_class, ctx.init_ret
        );
        return ExitCode::FAILURE;
    }
    println!("BPF read request_class = 7, set from Rust: the standalone build works");
    ExitCode::SUCCESS
}
