//! The typed-access check shared by `tests/typed.rs` and `tests/typed_other_layout.rs`: BPF
//! compiled against the generated header reads a nested derived struct field by field, for 32
//! threads, and writes one field back.

use std::sync::Barrier;
use std::thread;

use crate::*;

/// Mirror of `struct tld_typed_ctx` in `bpf/tld_typed.bpf.c`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct TypedCtx {
    init_ret: i64,
    found: u64,
    id: u64,
    inner_x: u32,
    inner_y: i32,
    pair0_x: u32,
    pair0_y: i32,
    pair1_x: u32,
    pair1_y: i32,
    weights: [u16; 4],
    score_bits: u64,
    tag: [u8; 8],
    hint_a: u64,
    hint_b: u64,
    write_pair1_y: i32,
    tid: i32,
    fast: u64,
    meta_size: u64,
}

fn nested_for(i: u32) -> Nested {
    Nested {
        id: 0x1000_0000_0000 + u64::from(i),
        inner: Inner {
            x: i * 3,
            y: -(i as i32) - 1,
        },
        pair: [
            Inner {
                x: 100 + i,
                y: 200 + i as i32,
            },
            Inner {
                x: 300 + i,
                y: -400 - i as i32,
            },
        ],
        weights: [i as u16, 1 + i as u16, u16::MAX - i as u16, 7],
        score: f64::from(i) * 1.25 + 0.5,
        tag: [b't', b'h', b'r', b'e', b'a', b'd', b'0' + (i % 10) as u8, 0],
    }
}

/// Runs the check on 32 threads. `expect_fast` says whether the pages should carry the
/// header's layout fingerprint (BPF then reads at constant offsets) or not (BPF resolves keys
/// by name through its per-task cache); the values must be the same either way.
pub fn check_typed_reads(test: &str, expect_fast: bool) {
    let Some(skel) = load_typed(test) else {
        return;
    };
    tld_runtime::connect(std::os::fd::AsFd::as_fd(&skel.maps.tld_data_map)).expect("connect");
    let skel = &skel;
    let barrier = Barrier::new(32);
    thread::scope(|s| {
        for i in 0..32u32 {
            let barrier = &barrier;
            s.spawn(move || {
                let n = nested_for(i);
                NESTED.set(n);
                HINT_A.set(u64::from(i) << 20);
                HINT_B.set(i ^ 0x5555);
                barrier.wait();

                let c = run(&skel.progs.tld_typed_read, TypedCtx::default());
                assert_eq!(c.init_ret, 0);
                assert_eq!(c.fast, u64::from(expect_fast), "lookup path");
                assert_eq!(c.found, 0b111, "not every key was found");
                let status = tld_runtime::status();
                assert_eq!(
                    c.meta_size as usize, status.data_capacity,
                    "the metadata page's size is the data area each thread's page reserves"
                );
                assert_eq!(c.tid, gettid());
                assert_eq!(c.id, n.id);
                assert_eq!((c.inner_x, c.inner_y), (n.inner.x, n.inner.y));
                assert_eq!((c.pair0_x, c.pair0_y), (n.pair[0].x, n.pair[0].y));
                assert_eq!((c.pair1_x, c.pair1_y), (n.pair[1].x, n.pair[1].y));
                assert_eq!(c.weights, n.weights);
                assert_eq!(f64::from_bits(c.score_bits), n.score);
                assert_eq!(c.tag, n.tag);
                assert_eq!(c.hint_a, u64::from(i) << 20);
                assert_eq!(c.hint_b, u64::from(i ^ 0x5555));

                // BPF writes through the typed pointer; Rust reads it back.
                let ctx = TypedCtx {
                    write_pair1_y: 9000 + i as i32,
                    ..TypedCtx::default()
                };
                run(&skel.progs.tld_typed_read, ctx);
                let mut expected = n;
                expected.pair[1].y = 9000 + i as i32;
                assert_eq!(NESTED.get(), expected);
            });
        }
    });
}
