//! The consistent API used the way BPF authors use it (`bpf/tld_consistent_patterns.bpf.c`):
//! branching on a read's result, branching on its retry count, reading inside a `bpf_for` loop,
//! and a 1024-byte value read into (and written from) a per-CPU scratch map value and read into
//! another map's value, since it does not fit the 512-byte stack. Every program loads on the
//! running kernel, and each one, run for this thread, reads the thread's values.

use std::os::fd::AsFd;

use tld_tests::{run, TestStruct, SEQ_BIG, SEQ_VALUE4};

/// Mirror of `struct pattern_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct PatternCtx {
    iters: u32,
    ret: i32,
    value: u64,
    sum: u64,
    hits: u64,
    misses: u64,
    whole: u64,
}

#[test]
fn common_patterns_load_and_read_whole_values() {
    let Some(skel) =
        tld_tests::load_consistent_patterns("common_patterns_load_and_read_whole_values")
    else {
        return;
    };
    tld_runtime::connect(skel.maps.tld_data_map.as_fd()).expect("connect");
    let v = 0x5eed_u64;
    SEQ_VALUE4.set(TestStruct {
        a: v,
        b: v,
        c: v,
        d: v,
    });
    SEQ_BIG.set([77; 128]);
    let ctx = |iters| PatternCtx {
        iters,
        ..PatternCtx::default()
    };

    let out = run(&skel.progs.branch_on_result, ctx(0));
    assert_eq!((out.ret, out.value, out.whole), (0, v, 1), "{out:?}");

    let out = run(&skel.progs.branch_on_retries, ctx(0));
    assert_eq!((out.ret, out.value, out.whole), (0, v, 1), "{out:?}");
    assert_eq!(out.hits, 0, "no writer, no retry: {out:?}");

    let out = run(&skel.progs.read_in_a_loop, ctx(100));
    assert_eq!((out.ret, out.whole, out.misses), (0, 1, 0), "{out:?}");
    assert_eq!(out.sum, 100 * v, "{out:?}");

    let out = run(&skel.progs.big_via_scratch, ctx(0));
    assert_eq!((out.ret, out.value, out.whole), (0, 77, 1), "{out:?}");
    assert_eq!(
        SEQ_BIG.get(),
        [78; 128],
        "written back from the scratch value"
    );

    let out = run(&skel.progs.big_into_a_map_value, ctx(0));
    assert_eq!((out.ret, out.value, out.whole), (0, 78, 1), "{out:?}");
}

/// A 1024-byte value read into a local variable does not build: the BPF stack has 512 bytes,
/// and clang says so at the read, naming the limit. (The header cannot tell a local destination
/// from map memory at compile time; clang can.) The pattern above, through map memory, is the
/// way.
#[test]
fn a_value_too_large_for_the_stack_is_refused_at_compile_time() {
    let scratch = std::env::temp_dir().join(format!("tld-patterns-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let source = scratch.join("big_on_stack.bpf.c");
    std::fs::write(
        &source,
        r#"#include "tld_generated.h"
char LICENSE[] SEC("license") = "GPL";
SEC("syscall")
int big_on_stack(void *ctx)
{
	__tld_value_type_seq_big v;
	struct bpf_tld tld;
	__u64 sum = 0;
	int i;

	if (bpf_tld_init(bpf_get_current_task_btf(), &tld))
		return 0;
	if (bpf_tld_read_consistent(&tld, seq_big, &v))
		return 0;
	bpf_for(i, 0, 128)
		sum += v[i];
	return sum;
}
"#,
    )
    .unwrap();
    let out = std::path::Path::new(env!("OUT_DIR"));
    let err = tld_bpf_build::compile_check(&source, &[out], &scratch.join("libbpf"))
        .expect_err("a 1024-byte local compiles");
    assert!(
        err.contains("BPF stack limit") && err.contains("big_on_stack.bpf.c:13"),
        "{err}"
    );
    std::fs::remove_dir_all(&scratch).ok();
}
