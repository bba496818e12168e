# SPDX-License-Identifier: MIT OR Apache-2.0
"""Python threads set a hint through libtld (examples/python/tld.py, ctypes), and BPF reads it
from each thread's element: bpf/tld_c.bpf.c's tld_c_read, run by the thread itself with
BPF_PROG_TEST_RUN. With TLD_TEST_PLUGINS (the paths of the test plugins A and B, separated by
":"), the threads also set the hints of two Rust extensions loaded as Python loads a PyO3
module (dlopen, RTLD_LOCAL), and BPF finds them in the same element: one runtime for the three
parts. Run by tests/tests/libtld_python.rs with TLD_TEST_MAP_FD and TLD_TEST_PROG_FD; prints
one line per thread and exits 0 if BPF read every value.
"""

import ctypes
import os
import sys
import threading

import tld

SYS_BPF = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
BPF_PROG_TEST_RUN = 10
PY_HINT_FOUND = 1 << 6
PLUGIN_A_COUNT_FOUND = 1 << 2
PLUGIN_B_LEVEL_FOUND = 1 << 4


class CRead(ctypes.Structure):
    """struct tld_c_read (bpf/tld_c.h)."""

    _fields_ = [
        ("pid", ctypes.c_int32),
        ("tgid", ctypes.c_int32),
        ("init_ret", ctypes.c_int64),
        ("found", ctypes.c_uint64),
        ("host_value", ctypes.c_uint64),
        ("host_typed", ctypes.c_int64),
        ("plugin_a_count", ctypes.c_uint64),
        ("plugin_a_flag", ctypes.c_uint64),
        ("plugin_b_level", ctypes.c_int64),
        ("plugin_b_seq", ctypes.c_uint64),
        ("plugin_b_budget", ctypes.c_uint32 * 2),
        ("py_hint", ctypes.c_uint64),
    ]


class TestRunAttr(ctypes.Structure):
    """The test-run member of union bpf_attr, up to ctx_out."""

    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),
        ("ctx_out", ctypes.c_uint64),
    ]


libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf_read(prog_fd):
    """What tld_c_read sees of the calling thread."""
    ctx = CRead()
    attr = TestRunAttr(prog_fd=prog_fd, ctx_size_in=ctypes.sizeof(ctx),
                       ctx_in=ctypes.addressof(ctx))
    if libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_long(BPF_PROG_TEST_RUN),
                    ctypes.byref(attr), ctypes.c_long(ctypes.sizeof(attr))) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "BPF_PROG_TEST_RUN: " + os.strerror(err))
    return ctx


def load_plugins():
    """The test plugins, loaded as Python loads an extension module, or None."""
    paths = os.environ.get("TLD_TEST_PLUGINS")
    if not paths:
        return None
    a, b = (ctypes.CDLL(p, mode=os.RTLD_NOW | os.RTLD_LOCAL) for p in paths.split(":"))
    a.plugin_a_set.argtypes = [ctypes.c_uint64, ctypes.c_uint32]
    a.plugin_a_set.restype = None
    b.plugin_b_set.argtypes = [ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint32]
    b.plugin_b_set.restype = None
    return a, b


def main():
    prog_fd = int(os.environ["TLD_TEST_PROG_FD"])
    tld.connect_fd(int(os.environ["TLD_TEST_MAP_FD"]))
    hint = tld.Hint("py_hint", ctypes.c_uint64)
    plugins = load_plugins()
    results = {}

    def worker(i):
        hint.set(4200 + i)
        if plugins:
            plugins[0].plugin_a_set(5200 + i, i)
            plugins[1].plugin_b_set(-(6200 + i), i, i)
        r = bpf_read(prog_fd)
        results[i] = (threading.get_native_id(), hint.get(), r)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failures = 0
    for i, (tid, own, r) in sorted(results.items()):
        ok = (r.init_ret == 0 and r.pid == tid and r.found & PY_HINT_FOUND
              and r.py_hint == 4200 + i and own == 4200 + i)
        if plugins:
            ok = (ok and r.found & PLUGIN_A_COUNT_FOUND and r.found & PLUGIN_B_LEVEL_FOUND
                  and r.plugin_a_count == 5200 + i and r.plugin_b_level == -(6200 + i))
        failures += not ok
        print("thread %d (tid %d): set %d, BPF read %d (init %d, found %#x)%s"
              % (i, tid, 4200 + i, r.py_hint, r.init_ret, r.found, "" if ok else "  FAIL"))
    st = tld.status()
    print("tld:", st)
    if len(results) != 8 or st.parts != (3 if plugins else 1):
        failures += 1
    print("%d failures" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
