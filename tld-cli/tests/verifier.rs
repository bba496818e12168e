//! The layout the iterator copies comes from the map's BTF, the map is opened read-only, and the
//! verifier refuses to copy more of a page than the map's BTF says it has. (In a process of its
//! own: libbpf's log callback, which the error message quotes, is process-wide.)
use std::os::fd::{AsFd, AsRawFd};

use tld_cli::iter::Inspector;
use tld_cli::map::{Choice, TldMap};
use tld_cli_test_support::{bpf::*, roles::*};
use tld_runtime::btf::UptrLayout;

const LAYOUT: &str = "the_iterator_copies_what_the_maps_btf_allows";

#[test]
fn the_iterator_copies_what_the_maps_btf_allows() {
    if role().is_some() {
        return;
    }
    let Some(fixture) = Fixture::load(LAYOUT) else {
        return;
    };
    let choice = Choice::Pin {
        path: fixture.pin().to_path_buf(),
        origin: "given with --pin",
    };
    let mut map = TldMap::open(&choice).expect("open the map");
    // Root reads the map's BTF: a 4096-byte data page and a 4036-byte metadata page.
    assert!(map.layout_from_btf);
    assert_eq!(map.layout, UptrLayout::standard(4096));
    assert_eq!(
        map.layout,
        UptrLayout {
            data_size: 4096,
            meta_size: 4036
        }
    );

    // The fd is read-only: tld cannot change the map.
    let fdinfo =
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", map.fd.as_fd().as_raw_fd()))
            .unwrap();
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    assert_eq!(flags & 3, libc::O_RDONLY as u32, "{fdinfo}");

    // The verifier types each pointer from the map's BTF: copying one byte more than the
    // metadata struct is refused at load time, with a message that says why.
    map.layout.meta_size = 4037;
    let err = Inspector::new(&map, None)
        .err()
        .expect("the verifier refuses a copy past the pointee");
    let text = err.to_string();
    assert!(
        text.contains("the verifier refuses to read the pages of map")
            && text.contains("invalid access to memory, mem_size=4036"),
        "{text}"
    );
    map.layout = UptrLayout {
        data_size: 4097,
        meta_size: 4036,
    };
    let text = Inspector::new(&map, None).err().unwrap().to_string();
    assert!(text.contains("mem_size=4096"), "{text}");
    // Smaller copies are allowed (and what the map's BTF says is what tld uses).
    map.layout = UptrLayout {
        data_size: 8,
        meta_size: 4,
    };
    assert!(Inspector::new(&map, None).is_ok());
}
