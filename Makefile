# The two commands that do everything on a fresh machine:
#   make demo   - build and run the demo (BPF reads per-thread hints set from Rust)
#   make test   - run every test, BPF ones against the running kernel, then the VM suite
#                 (scx_tld and the kernel tests under a Linux 7.x kernel with sched_ext, in qemu)
# Both install the system packages they need when run as root, and otherwise print the command.

# bpftool dumps the running kernel's BTF as a vmlinux.h for tests/tests/header_matrix.rs and
# the kernel's own BPF test program; libbpf-dev is what C programs written on the kernel's own
# task local data library link against, in the compatibility tests.
SYSTEM_PACKAGES := clang-19 make pkgconf gcc libelf-dev zlib1g-dev bpftool libbpf-dev
# What the VM suite needs (vm/): qemu, and cpio and a static busybox for the initramfs. Installed
# without recommends: qemu's recommends are a GUI.
VM_PACKAGES := qemu-system-x86 cpio busybox-static
CARGO ?= cargo

.PHONY: all deps demo demo-sched test vm-test lint fmt bench doc miri package-check install libtld clean

all: test

# Installs what is missing; as non-root, prints the apt command instead.
deps:
	@missing=""; vm_missing=""; \
	for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	for p in $(VM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || vm_missing="$$vm_missing $$p"; \
	done; \
	if [ -n "$$missing$$vm_missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing$$vm_missing"; \
	    apt-get update -qq; \
	    if [ -n "$$missing" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing || exit 1; fi; \
	    if [ -n "$$vm_missing" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$vm_missing || exit 1; fi; \
	  else \
	    echo "missing system packages:$$missing$$vm_missing"; \
	    echo "run: sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing$$vm_missing"; \
	    exit 1; \
	  fi; \
	fi

demo: deps
	$(CARGO) run --release -p tld-examples --bin demo

test: deps
	$(CARGO) test --workspace
	$(CARGO) run -q -p tld-vm -- test

# The VM suite alone: boots Debian's newest trixie-backports cloud kernel (Linux 7.x, sched_ext)
# in qemu, runs scx_tld's tests and a subset of the kernel tests there, and prints a pass/fail
# line per test. The kernel is downloaded once and cached in target/tld-vm/ (or TLD_VM_CACHE).
# Without qemu or the kernel package it says SKIPPED, unless TLD_REQUIRE_BPF=1.
vm-test: deps
	$(CARGO) run -q -p tld-vm -- test

# What the hints change: the wake-up delay of a thread sleeping 1 ms under CPU hogs, with and
# without its latency hint, and the latency of the tokio server's hinted and unhinted requests,
# measured under scx_tld in the VM.
demo-sched: deps
	$(CARGO) run -q -p tld-vm -- demo

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Benchmarks (root, or CAP_BPF + CAP_PERFMON): the criterion benchmarks with short measurement
# times, then the report, which runs every measurement, prints the ratio table and writes it to
# target/tld-bench.md, and the figures as JSON (one object per id) to target/tld-bench.json.
# Not part of `make test`.
bench: deps
	$(CARGO) bench -p tld-bench -- --warm-up-time 0.5 --measurement-time 2 --noplot
	$(CARGO) build --release -p tld-bench --bin tld-bench-joined
	$(CARGO) build --release -p tld-bench-plugin-a -p tld-bench-plugin-b
	$(CARGO) run --release -p tld-bench --bin tld-bench-report -- --out target/tld-bench.md

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

# Miri, which checks every unsafe access as it interprets the code, over what it can run: the
# format crate's tests and the runtime's unit tests that make no system call miri lacks (BPF,
# pidfds, and the pool's reserved regions, which it maps with flags miri does not model).
# Loom's models run their own scheduler, which miri cannot: they are skipped. The
# multi-threaded stress tests run fewer rounds under miri. Leaks are not errors for the runtime:
# its growable tables (threads/segments.rs) never free a segment, by design.
# Needs rustup's nightly toolchain with the miri component, which it adds. Not part of
# `make test`.
MIRI_SKIP := model threads::pool::tests
miri:
	rustup component add --toolchain nightly miri rust-src
	MIRIFLAGS=-Zmiri-disable-isolation $(CARGO) +nightly miri test -p tld-wire
	MIRIFLAGS=-Zmiri-ignore-leaks $(CARGO) +nightly miri test -p tld-runtime --lib -- $(addprefix --skip ,$(MIRI_SKIP))

# The crates meant for users package, and build from their packages alone, together: cargo
# resolves their path dependencies on each other locally and everything else from the
# registry's index, which it must be able to reach.
# Then examples/standalone, a project outside this workspace whose build.rs is one line of
# tld-bpf-build, is built and run (its BPF check needs root, and skips without it).
# Cargo unpacks the packaged crates under CARGO_HOME once per checkout and then reuses them, so a
# second run would verify stale sources: the unpacked copies of our crates go first. Only
# directories of local registries are touched; their names start with "-".
PUBLISHED_CRATES := tld-wire tld-macros tld-runtime tld-bpf-build tld-cli
CARGO_HOME ?= $(HOME)/.cargo
package-check: deps
	rm -rf $(foreach c,$(PUBLISHED_CRATES),$(CARGO_HOME)/registry/src/-*/$(c)-[0-9]*)
	$(CARGO) publish --dry-run --allow-dirty $(addprefix -p ,$(PUBLISHED_CRATES))
	cd examples/standalone && $(CARGO) run --locked --target-dir ../../target/standalone

# libtld, the C ABI of the runtime (libtld/): libtld.so (soname libtld.so.0), libtld.a, tld.h
# and tld.pc, built with cargo's LIBTLD_PROFILE (release by default) and installed under
# PREFIX (/usr/local by default; DESTDIR is prepended, for packaging). Builds with cargo only:
# no system package is needed beyond a C compiler.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
LIBTLD_PROFILE ?= release
LIBTLD_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
LIBTLD_OUT := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)/$(if $(filter dev,$(LIBTLD_PROFILE)),debug,$(LIBTLD_PROFILE))

libtld:
	$(CARGO) build -p libtld --profile $(LIBTLD_PROFILE)

install: libtld
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 644 libtld/include/tld.h $(DESTDIR)$(INCLUDEDIR)/tld.h
	install -m 755 $(LIBTLD_OUT)/libtld.so $(DESTDIR)$(LIBDIR)/libtld.so.$(LIBTLD_VERSION)
	ln -sf libtld.so.$(LIBTLD_VERSION) $(DESTDIR)$(LIBDIR)/libtld.so.0
	ln -sf libtld.so.0 $(DESTDIR)$(LIBDIR)/libtld.so
	install -m 644 $(LIBTLD_OUT)/libtld.a $(DESTDIR)$(LIBDIR)/libtld.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(LIBTLD_VERSION)|' \
	    libtld/tld.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tld.pc

clean:
	$(CARGO) clean
