//! The generated header as a program's first include, in every build a user has: a compile
//! matrix of three builds (plain clang-19, libbpf-cargo's `SkeletonBuilder`, scx_cargo's
//! `BpfBuilder`) against three kinds of kernel types (our `tld_vmlinux.h`, a `vmlinux.h` dumped
//! by bpftool from the running kernel, and scx_cargo's `vmlinux.h` with `scx/common.bpf.h`
//! included after or before the generated header). Every object is then loaded, connected to
//! the runtime and run: its program must read the thread's hint on both lookup paths.
//!
//! (`header.rs` checks that a missing prerequisite stops the build with one clear `#error`.)
//!
//! scx_cargo (GPL-2.0-only) is a dev-dependency of this unpublished crate only: it builds test
//! objects here and is never linked into a library. It runs `clang`, so `BPF_CLANG` is set to
//! our clang (clang-19, or `TLD_CLANG`). The bpftool column needs bpftool (`make deps`
//! installs it); without it that column says SKIPPED, or fails under `TLD_REQUIRE_BPF=1`.
//! Loading needs root (or CAP_BPF + CAP_PERFMON) on Linux 6.13 or later, as everywhere.

use std::os::fd::AsFd;

use libbpf_rs::MapCore as _;
use std::path::{Path, PathBuf};

use tld_tests::bpf_required;
use tld_tests::VALUE1;

/// The probe every cell compiles: reads `value1` on the fast and on the cached path.
const PROBE: &str = r#"
char LICENSE[] SEC("license") = "GPL";

/* Mirrored by ProbeCtx below. */
struct probe_ctx {
	__s64 init_ret;
	__s64 value1;
	__s64 cached_value1;
	__u64 fast;
};

SEC("syscall")
int tld_probe(struct probe_ctx *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct bpf_tld tld;
	__s32 *v;

	ctx->init_ret = bpf_tld_init(task, &tld);
	if (ctx->init_ret)
		return 0;
	ctx->fast = tld.fast != NULL;
	v = bpf_tld_get(&tld, value1);
	ctx->value1 = v ? *v : -1;
	if (__bpf_tld_init(task, &tld, 0))
		return 0;
	v = bpf_tld_get(&tld, value1);
	ctx->cached_value1 = v ? *v : -1;
	return 0;
}
"#;

/// The second source of the two-source cell.
const SECOND_SOURCE: &str = r#"
#include "tld_generated.h"
#include <scx/common.bpf.h>

SEC("syscall")
int tld_probe_second(void *ctx)
{
	struct bpf_tld tld;
	__u64 *a;

	if (bpf_tld_init(bpf_get_current_task_btf(), &tld))
		return 0;
	a = bpf_tld_get(&tld, hint_a);
	return a ? 1 : 0;
}
"#;

/// Mirror of `struct probe_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ProbeCtx {
    init_ret: i64,
    value1: i64,
    cached_value1: i64,
    fast: u64,
}

/// Which kernel types a cell's build finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Types {
    /// Only our `tld_vmlinux.h`, next to the generated header.
    TldVmlinux,
    /// A bpftool dump of the running kernel's BTF, on the include path.
    Bpftool,
    /// scx_cargo's `vmlinux.h`; the program includes `<scx/common.bpf.h>` after the header.
    ScxAfter,
    /// The same, `<scx/common.bpf.h>` before the generated header.
    ScxBefore,
}

/// How a cell compiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Build {
    Clang,
    SkeletonBuilder,
    BpfBuilder,
    /// `BpfBuilder` linking two sources that both include the generated header (as a
    /// scheduler split into several `.bpf.c` files does).
    BpfBuilderTwoSources,
}

/// The program text of a cell: the includes, a check that the expected `vmlinux.h` was used,
/// and the probe.
fn program(types: Types) -> String {
    let includes = match types {
        Types::TldVmlinux => "#include \"tld_generated.h\"\n\
             #ifndef __TLD_VMLINUX_H\n#error \"expected tld_vmlinux.h\"\n#endif\n"
            .to_string(),
        Types::Bpftool => "#include \"tld_generated.h\"\n\
             #if !defined(__VMLINUX_H__) || defined(__TLD_VMLINUX_H)\n\
             #error \"expected the bpftool vmlinux.h\"\n#endif\n\
             /* a type only a full vmlinux.h has */\n\
             _Static_assert(sizeof(struct bpf_map_info) > 0, \"bpf_map_info\");\n"
            .to_string(),
        Types::ScxAfter => "#include \"tld_generated.h\"\n#include <scx/common.bpf.h>\n".into(),
        Types::ScxBefore => "#include <scx/common.bpf.h>\n#include \"tld_generated.h\"\n".into(),
    };
    format!("{includes}{PROBE}")
}

/// The generated header and the library header, copied into `dir` (with `tld_vmlinux.h` only
/// when `with_subset`).
fn generated_headers(dir: &Path, with_subset: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let out = Path::new(env!("OUT_DIR"));
    std::fs::copy(out.join("tld_generated.h"), dir.join("tld_generated.h")).unwrap();
    std::fs::write(
        dir.join("task_local_data.bpf.h"),
        tld_runtime::header::BPF_HEADER,
    )
    .unwrap();
    if with_subset {
        std::fs::write(
            dir.join("tld_vmlinux.h"),
            tld_runtime::header::VMLINUX_SUBSET,
        )
        .unwrap();
    }
}

/// Dumps the running kernel's BTF as C with bpftool into `dir/vmlinux.h`, as
/// `tld_bpf_build::Builder::vmlinux` does. `Err` says why not.
fn bpftool_vmlinux(dir: &Path) -> Result<(), String> {
    tld_bpf_build::write_vmlinux(&tld_bpf_build::Vmlinux::RunningKernel, dir)
        .map(|_| ())
        .map_err(|e| format!("{e} (make deps installs bpftool)"))
}

/// The include directories of scx_cargo's headers, as `BpfBuilder` passes them.
fn scx_include_dirs(bpf_h: &Path) -> Vec<PathBuf> {
    vec![
        bpf_h.join("arch/x86"),
        bpf_h.to_path_buf(),
        bpf_h.join("bpf-compat"),
    ]
}

struct Cell {
    build: Build,
    types: Types,
    object: PathBuf,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} with {:?}", self.build, self.types)
    }
}

/// The shared setup of every cell.
struct Matrix {
    root: PathBuf,
    /// Where scx_cargo unpacked its headers.
    scx_bpf_h: PathBuf,
    /// The bpftool vmlinux.h's directory, if bpftool could dump one.
    bpftool: Result<PathBuf, String>,
}

impl Matrix {
    /// Compiles one cell; returns its object, or the compiler's diagnostics.
    fn compile(&self, build: Build, types: Types) -> Result<Cell, String> {
        let name = format!("{build:?}_{types:?}").to_lowercase();
        let dir = self.root.join(&name);
        generated_headers(&dir, types == Types::TldVmlinux);
        let source = dir.join(format!("{name}.bpf.c"));
        std::fs::write(&source, program(types)).unwrap();
        let object = dir.join(format!("{name}.bpf.o"));

        let mut include: Vec<PathBuf> = vec![dir.clone()];
        match types {
            Types::TldVmlinux => {}
            Types::Bpftool => include.push(self.bpftool.clone()?),
            Types::ScxAfter | Types::ScxBefore => include.extend(scx_include_dirs(&self.scx_bpf_h)),
        }
        let dirs: Vec<&Path> = include.iter().map(PathBuf::as_path).collect();
        let clang = tld_bpf_build::clang();

        match build {
            Build::Clang => {
                tld_bpf_build::compile_object(&source, &dirs, &self.root.join("libbpf"), &object)?
            }
            Build::SkeletonBuilder => {
                // What a user of libbpf-cargo writes: clang-19, and the header's directory.
                let mut args: Vec<String> =
                    dirs.iter().map(|d| format!("-I{}", d.display())).collect();
                args.extend(["-idirafter".into(), "/usr/include/x86_64-linux-gnu".into()]);
                libbpf_cargo::SkeletonBuilder::new()
                    .source(&source)
                    .obj(&object)
                    .clang(&clang)
                    .clang_args(args)
                    .build()
                    .map_err(|e| format!("{e:#}"))?;
            }
            Build::BpfBuilder => {
                // What an scx scheduler's build.rs writes: its headers, plus the directory of
                // the generated header. BpfBuilder writes <name>.bpf.o into OUT_DIR.
                let out = dir.join("out");
                std::fs::create_dir_all(&out).unwrap();
                std::env::set_var("OUT_DIR", &out);
                let mut builder = scx_cargo::BpfBuilder::new().map_err(|e| format!("{e:#}"))?;
                builder
                    .add_include_path(dir.to_str().unwrap())
                    .enable_skel(source.to_str().unwrap(), &name)
                    .build()
                    .map_err(|e| format!("{e:#}"))?;
                std::fs::copy(out.join(format!("{name}.bpf.o")), &object)
                    .map_err(|e| format!("BpfBuilder wrote no object: {e}"))?;
            }
            Build::BpfBuilderTwoSources => {
                // A second file with its own lookup: the two objects are linked into one, with
                // one tld_data_map (the header's maps and resolver are weak definitions).
                let second = dir.join("second.bpf.c");
                std::fs::write(&second, SECOND_SOURCE).unwrap();
                let out = dir.join("out");
                std::fs::create_dir_all(&out).unwrap();
                std::env::set_var("OUT_DIR", &out);
                let mut builder = scx_cargo::BpfBuilder::new().map_err(|e| format!("{e:#}"))?;
                builder
                    .add_include_path(dir.to_str().unwrap())
                    .enable_skel(source.to_str().unwrap(), &name)
                    .add_source(second.to_str().unwrap())
                    .compile_link_gen()
                    .map_err(|e| format!("{e:#}"))?;
                std::fs::copy(out.join("bpf.bpf.o"), &object)
                    .map_err(|e| format!("BpfBuilder wrote no linked object: {e}"))?;
            }
        }
        Ok(Cell {
            build,
            types,
            object,
        })
    }
}

/// Loads a cell's object (its probes only: scx's common.bpf.h brings a program that needs
/// sched_ext), connects the runtime to its map, and runs the probe on this thread. `None` if
/// BPF is unavailable and not required.
fn load_and_run(cell: &Cell) -> Option<ProbeCtx> {
    let quiet = libbpf_rs::set_print(None);
    let mut open = libbpf_rs::ObjectBuilder::default()
        .open_file(&cell.object)
        .unwrap_or_else(|e| panic!("{cell}: opening the object: {e:#}"));
    for mut prog in open.progs_mut() {
        let probe = prog
            .name()
            .to_str()
            .is_some_and(|n| n.starts_with("tld_probe"));
        prog.set_autoload(probe);
    }
    let loaded = open.load();
    libbpf_rs::set_print(quiet);
    let obj = match loaded {
        Ok(obj) => obj,
        Err(e) if !bpf_required() => {
            eprintln!(
                "SKIPPED loading {cell}: {e}. Loading needs root or CAP_BPF+CAP_PERFMON on \
                 Linux >= 6.13; TLD_REQUIRE_BPF=1 makes this a failure."
            );
            return None;
        }
        Err(e) => panic!("{cell}: compiles but does not load: {e:#}"),
    };
    let map = obj
        .maps()
        .find(|m| m.name().to_str() == Some("tld_data_map"))
        .unwrap_or_else(|| panic!("{cell}: no tld_data_map"));
    tld_runtime::connect(map.as_fd()).unwrap_or_else(|e| panic!("{cell}: connect: {e}"));
    let prog = obj
        .progs_mut()
        .find(|p| p.name().to_str() == Some("tld_probe"))
        .unwrap_or_else(|| panic!("{cell}: no tld_probe"));
    Some(tld_tests::run(&prog, ProbeCtx::default()))
}

#[test]
fn the_generated_header_first_compiles_and_runs_in_every_build() {
    let root = std::env::temp_dir().join(format!("tld-header-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();

    // scx_cargo runs `clang`; make it ours. It also reads OUT_DIR, set per cell. This binary
    // has this one test, so nothing else reads the environment meanwhile.
    if std::env::var_os("BPF_CLANG").is_none() {
        std::env::set_var("BPF_CLANG", tld_bpf_build::clang());
    }
    // Unpack scx_cargo's headers once, for the plain clang and SkeletonBuilder cells too.
    let scx_out = root.join("scx");
    std::fs::create_dir_all(&scx_out).unwrap();
    std::env::set_var("OUT_DIR", &scx_out);
    scx_cargo::BpfBuilder::new().expect("scx_cargo::BpfBuilder::new (is clang-19 installed?)");
    let matrix = Matrix {
        scx_bpf_h: scx_out.join("scx_utils-bpf_h"),
        bpftool: bpftool_vmlinux(&root.join("bpftool")).map(|()| root.join("bpftool")),
        root: root.clone(),
    };
    assert!(
        matrix.scx_bpf_h.join("scx/common.bpf.h").exists(),
        "scx_cargo did not unpack scx/common.bpf.h"
    );

    let cells = [
        (Build::Clang, Types::TldVmlinux),
        (Build::Clang, Types::Bpftool),
        (Build::Clang, Types::ScxAfter),
        (Build::Clang, Types::ScxBefore),
        (Build::SkeletonBuilder, Types::TldVmlinux),
        (Build::SkeletonBuilder, Types::Bpftool),
        (Build::SkeletonBuilder, Types::ScxAfter),
        (Build::SkeletonBuilder, Types::ScxBefore),
        (Build::BpfBuilder, Types::ScxAfter),
        (Build::BpfBuilder, Types::ScxBefore),
        (Build::BpfBuilderTwoSources, Types::ScxAfter),
    ];
    let mut compiled = Vec::new();
    for (build, types) in cells {
        if types == Types::Bpftool {
            if let Err(why) = &matrix.bpftool {
                assert!(
                    !bpf_required(),
                    "{build:?} with {types:?}: no bpftool vmlinux.h: {why}"
                );
                eprintln!("SKIPPED {build:?} with {types:?}: {why}");
                continue;
            }
        }
        match matrix.compile(build, types) {
            Ok(cell) => compiled.push(cell),
            Err(e) => {
                panic!("{build:?} with {types:?}: the generated header does not compile:\n{e}")
            }
        }
    }

    // The same hint, read by every object on both paths.
    VALUE1.set(4711);
    for cell in &compiled {
        let Some(ctx) = load_and_run(cell) else {
            continue;
        };
        assert_eq!(ctx.init_ret, 0, "{cell}: bpf_tld_init");
        assert_eq!(
            ctx.fast, 1,
            "{cell}: the pages carry this header's fingerprint"
        );
        assert_eq!(ctx.value1, 4711, "{cell}: the fast path read");
        assert_eq!(ctx.cached_value1, 4711, "{cell}: the cached path read");
        eprintln!("{cell}: compiled, loaded, read the hint on both paths");
    }
    std::fs::remove_dir_all(&root).ok();
}
