use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::ProgramInput;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
fn main() {
    let mut storage = MaybeUninit::uninit();
    let open = tld_bench::skel::BenchTldSkelBuilder::default()
        .open(&mut storage)
        .unwrap();
    let skel = open.load().unwrap();
    tld_runtime::connect(skel.maps.tld_data_map.as_fd()).unwrap();
    tld_bench_hints::H00.set(42);
    let data = [0u8; 64];
    let p = &skel.progs;
    for _ in 0..3 {
        for (name, p) in [
            ("tc", &p.exp_tc),
            ("sock", &p.exp_sock),
            ("xdp", &p.exp_xdp),
            ("xdp_empty", &p.exp_xdp_empty),
            ("tc_empty", &p.exp_tc_empty),
            ("xdp_task", &p.exp_xdp_task),
            ("xdp_two", &p.exp_xdp_two),
        ] {
            let mut input = ProgramInput::default();
            input.data_in = Some(&data);
            input.repeat = 1000000;
            let out = p.test_run(input);
            match out {
                Ok(o) => println!("{name}: ret {} dur {:?}", o.return_value, o.duration),
                Err(e) => println!("{name}: {e}"),
            }
        }
    }
}
