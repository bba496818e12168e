// Link the hints crate in: the generated header describes the hints linked into this script.
use standalone_hints as _;

fn main() {
    tld_bpf_build::build("src/bpf/probe.bpf.c"); // -> $OUT_DIR/probe.skel.rs
}
