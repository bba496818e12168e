# SPDX-License-Identifier: MIT OR Apache-2.0
"""Task local data from Python: per-thread hints that BPF programs read by name.

A thin binding of libtld (``libtld.so.0``) through ctypes: no compiled extension. Each Python
thread is a POSIX thread with its own value of every hint, which a BPF program (a sched_ext
scheduler, a tracer) finds by name in the thread's task local data::

    import ctypes, tld

    PRIORITY = tld.Hint("priority", ctypes.c_int)   # once, at import time

    def handle_request(request):
        PRIORITY.set(5)                              # this thread's value

libtld is found as ``libtld.so.0`` on the library path, or at ``$TLD_LIBRARY``. Without a BPF
map, hints keep working as thread-locals, and :func:`status` says why. In a process where Rust
extensions (PyO3) or other libraries also use tld, every part shares one runtime.
"""

import ctypes
import os

__all__ = ["Hint", "Status", "connect_fd", "connect_pinned", "thread_init", "status", "free"]


class _Key(ctypes.Structure):
    """``tld_key_t``: a value's offset in a thread's page, or a negative errno."""

    _fields_ = [("off", ctypes.c_int16)]


class Status(ctypes.Structure):
    """``struct tld_status`` (see tld.h)."""

    _fields_ = [
        ("connection", ctypes.c_int),
        ("error", ctypes.c_int),
        ("map_id", ctypes.c_uint32),
        ("map_name", ctypes.c_char * 16),
        ("reason", ctypes.c_char * 256),
        ("last_error", ctypes.c_char * 256),
        ("published_keys", ctypes.c_uint32),
        ("data_bytes", ctypes.c_uint32),
        ("data_capacity", ctypes.c_uint32),
        ("live_threads", ctypes.c_uint32),
        ("registered_threads", ctypes.c_uint32),
        ("parts", ctypes.c_uint32),
        ("sharing", ctypes.c_int),
        ("runtime_id", ctypes.c_uint64),
        ("registration_failures", ctypes.c_uint64),
        ("last_registration_error", ctypes.c_char * 256),
        ("watcher", ctypes.c_int),
    ]

    CONNECTED = 1
    SHARING = {0: "serving", 1: "joined", 2: "isolated", 3: "unshared"}

    @property
    def connected(self):
        return self.connection == Status.CONNECTED

    def __str__(self):
        if self.connected:
            link = "connected to map %s (id %d)" % (self.map_name.decode(), self.map_id)
        else:
            link = "not connected: %s" % (self.reason.decode() or "nothing tried yet")
        return "%s; %d keys; %d of %d threads registered; %d parts (%s)" % (
            link,
            self.published_keys,
            self.registered_threads,
            self.live_threads,
            self.parts,
            Status.SHARING.get(self.sharing, "?"),
        )


def _load():
    lib = ctypes.CDLL(os.environ.get("TLD_LIBRARY") or "libtld.so.0")
    lib.tld_create_key.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.tld_create_key.restype = _Key
    lib.tld_find_key.argtypes = [ctypes.c_char_p]
    lib.tld_find_key.restype = _Key
    lib.tld_get_data.argtypes = [ctypes.c_int, _Key]
    lib.tld_get_data.restype = ctypes.c_void_p
    lib.tld_free.argtypes = []
    lib.tld_free.restype = None
    for name in ("tld_connect_fd",):
        getattr(lib, name).argtypes = [ctypes.c_int]
        getattr(lib, name).restype = ctypes.c_int
    lib.tld_connect_pinned.argtypes = [ctypes.c_char_p]
    lib.tld_connect_pinned.restype = ctypes.c_int
    lib.tld_thread_init.argtypes = []
    lib.tld_thread_init.restype = ctypes.c_int
    lib.tld_get_status.argtypes = [ctypes.POINTER(Status), ctypes.c_size_t]
    lib.tld_get_status.restype = ctypes.c_int
    lib.tld_set_watcher.argtypes = [ctypes.c_int]
    lib.tld_set_watcher.restype = None
    return lib


_lib = _load()


def _check(rc, what):
    if rc < 0:
        raise OSError(-rc, "%s: %s" % (what, os.strerror(-rc)))


class Hint:
    """A key whose per-thread value has the ctypes type ``ctype`` (c_int, c_uint64, a
    ctypes.Structure, ...), created at once: ``Hint("priority", ctypes.c_int)``.

    ``create=False`` finds a key that another part of the process created. Raises OSError
    with the errno (EEXIST, E2BIG, ENOSPC, EINVAL; ENOENT when finding) if it cannot.
    """

    def __init__(self, name, ctype, create=True):
        self.name = name
        self.ctype = ctype
        if create:
            self._key = _lib.tld_create_key(name.encode(), ctypes.sizeof(ctype))
        else:
            self._key = _lib.tld_find_key(name.encode())
        if self._key.off <= 0:
            _check(self._key.off or -22, "tld key %r" % name)

    def _value(self):
        """The calling thread's value, as a ctypes object that lives in its page."""
        p = _lib.tld_get_data(-1, self._key)
        if not p:
            raise OSError(12, "tld: this thread has no page for %r" % self.name)
        return self.ctype.from_address(p)

    def set(self, value):
        """Stores the calling thread's value: a plain write into its page."""
        if isinstance(value, ctypes.Structure):
            ctypes.memmove(ctypes.addressof(self._value()), ctypes.addressof(value),
                           ctypes.sizeof(self.ctype))
        else:
            self._value().value = value

    def get(self):
        """The calling thread's value (for a structure, a copy), including what BPF wrote."""
        v = self._value()
        if isinstance(v, ctypes.Structure):
            return self.ctype.from_buffer_copy(v)
        return v.value


def connect_fd(fd):
    """Uses the tld_data_map behind ``fd`` (duplicated), moving every thread to it."""
    _check(_lib.tld_connect_fd(fd), "tld_connect_fd")


def connect_pinned(path):
    """Uses the tld_data_map pinned at ``path`` in bpffs, and follows the pin."""
    _check(_lib.tld_connect_pinned(os.fsencode(path)), "tld_connect_pinned")


def thread_init():
    """Registers the calling thread now, or raises the reason it is not."""
    _check(_lib.tld_thread_init(), "tld_thread_init")


def free():
    """Gives the calling thread's page back now (it is given back as the thread ends)."""
    _lib.tld_free()


def set_watcher(on):
    """Allows (the default) or forbids the watcher thread, which follows the map's pin."""
    _lib.tld_set_watcher(1 if on else 0)


def status():
    """The runtime's state: :class:`Status` (print it, or read its fields)."""
    st = Status()
    _check(_lib.tld_get_status(ctypes.byref(st), ctypes.sizeof(st)), "tld_get_status")
    return st
