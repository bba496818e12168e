//! The README's BPF example compiles against the header generated from the demo's hints.

use std::path::Path;

#[test]
fn the_readme_bpf_example_compiles() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let start = readme.find("```c\n").expect("a C block in the README") + "```c\n".len();
    let len = readme[start..].find("```").expect("the block's end");
    let source = format!(
        "{}\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n",
        &readme[start..start + len]
    );

    let dir = std::env::temp_dir().join(format!("tld-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("readme.bpf.c");
    std::fs::write(&file, source).unwrap();
    // OUT_DIR holds the demo's tld_generated.h (see build.rs).
    let out = Path::new(env!("OUT_DIR"));
    let result = tld_bpf_build::compile_check(&file, &[out], &dir.join("libbpf"));
    std::fs::remove_dir_all(&dir).ok();
    if let Err(diagnostics) = result {
        panic!("the README's BPF example does not compile:\n{diagnostics}");
    }
}
