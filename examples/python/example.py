#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""A worker pool that tells the scheduler which requests are latency-critical.

Each worker thread marks the request it handles with two hints, which a BPF scheduler reading
task local data (such as examples/scheduler's scx_tld) finds by name for that thread:
``priority`` (nice-like, -20..19) and ``latency_budget_us``. Run it with libtld on the library
path (``make install``), or with TLD_LIBRARY=path/to/libtld.so.0:

    python3 examples/python/example.py

With a map pinned at /sys/fs/bpf/tld_data_map (or at $TLD_MAP_PATH) the threads register with
it; without one the hints work as thread-locals, and the status printed at the end says why.
"""

import ctypes
import queue
import threading
import time

import tld

PRIORITY = tld.Hint("priority", ctypes.c_int)
LATENCY_BUDGET_US = tld.Hint("latency_budget_us", ctypes.c_uint32)


def handle(request):
    kind, work = request
    if kind == "interactive":
        PRIORITY.set(-5)
        LATENCY_BUDGET_US.set(500)
    else:
        PRIORITY.set(10)
        LATENCY_BUDGET_US.set(0)
    deadline = time.monotonic() + work
    while time.monotonic() < deadline:
        pass
    # What the scheduler saw while this request ran.
    return kind, PRIORITY.get(), LATENCY_BUDGET_US.get()


def main():
    requests = queue.Queue()
    results = []
    lock = threading.Lock()

    def worker():
        while True:
            request = requests.get()
            if request is None:
                return
            result = handle(request)
            with lock:
                results.append(result)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for w in workers:
        w.start()
    for i in range(40):
        requests.put(("interactive" if i % 4 == 0 else "batch", 0.001))
    for _ in workers:
        requests.put(None)
    for w in workers:
        w.join()
    for kind in ("interactive", "batch"):
        seen = {(p, b) for k, p, b in results if k == kind}
        print("%s requests ran with (priority, latency budget) %s" % (kind, sorted(seen)))
    print("tld:", tld.status())


if __name__ == "__main__":
    main()
