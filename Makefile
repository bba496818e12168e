# The two commands that do everything on a fresh machine:
#   make demo   - build and run the demo (BPF reads per-thread hints set from Rust)
#   make test   - run every test, BPF ones against the running kernel
# Both install the system packages they need when run as root, and otherwise print the command.

# bpftool dumps the running kernel's BTF as a vmlinux.h for tests/tests/header_matrix.rs.
SYSTEM_PACKAGES := clang-19 make pkgconf gcc libelf-dev zlib1g-dev bpftool
CARGO ?= cargo

.PHONY: all deps demo test lint fmt bench doc package-check clean

all: test

# Installs what is missing; as non-root, prints the apt command instead.
deps:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "run: sudo apt-get update && sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi

demo: deps
	$(CARGO) run --release -p tld-examples --bin demo

test: deps
	$(CARGO) test --workspace

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
	$(CARGO) run --release -p tld-bench --bin tld-bench-report -- --out target/tld-bench.md

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

# The crates meant for users package, and build from their packages alone, together: cargo
# resolves their path dependencies on each other locally and everything else from the
# registry's index, which it must be able to reach.
# Then examples/standalone, a project outside this workspace whose build.rs is one line of
# tld-bpf-build, is built and run (its BPF check needs root, and skips without it).
PUBLISHED_CRATES := tld-macros tld-runtime tld-bpf-build
package-check: deps
	$(CARGO) publish --dry-run --allow-dirty $(addprefix -p ,$(PUBLISHED_CRATES))
	cd examples/standalone && $(CARGO) run --locked --target-dir ../../target/standalone

clean:
	$(CARGO) clean
