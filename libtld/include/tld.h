/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * tld.h - task local data for C and C++: per-thread hints that BPF programs read by name.
 *
 * A program creates keys (a name and a size), and each thread stores its own value for each
 * key with a plain memory write. BPF programs (a sched_ext scheduler, a tracer, a policy
 * engine) look the thread's values up by name, and may write them too.
 *
 *	#include <tld.h>
 *
 *	TLD_DEFINE_KEY(prio_key, "priority", sizeof(int));	// at file scope
 *
 *	void handle_request(void)
 *	{
 *		int *prio = tld_get_data(-1, prio_key);		// this thread's copy
 *		if (prio)
 *			*prio = 5;				// BPF sees it at once
 *	}
 *
 * The interface is the one of the user-space library of Linux 7.x's BPF selftests
 * (TLD_DEFINE_KEY, tld_create_key, tld_get_data, tld_free, tld_key_is_err,
 * tld_key_err_or_zero): a program written for that library builds against this header by
 * changing its include. The memory it shares with BPF is the task local data format that
 * BPF programs written against Linux 6.18's or scx's task_local_data.bpf.h, or against
 * tld's own, read.
 *
 * What this library adds:
 *
 *  - One runtime per process. libtld is the tld runtime (written in Rust) behind a C ABI.
 *    Every copy of that runtime in a process (libtld, the executable if it is written in
 *    Rust, each Rust plugin or Python extension) shares one metadata page and one page per
 *    thread, which BPF finds in the thread's single map element.
 *  - Pages are managed for you: a thread gets a page at its first tld_get_data() and gives
 *    it back when it exits (tld_free() is optional); after fork() the child's thread is
 *    registered with its own copy; a page that BPF might still reach is never given to
 *    another thread.
 *  - Connecting: to the map whose fd tld_get_data() is given, as the selftests library does;
 *    or explicitly with tld_connect_fd() or tld_connect_pinned(), which moves every live
 *    thread to a new map (a restarted scheduler); or automatically, to the map pinned at
 *    $TLD_MAP_PATH, else /sys/fs/bpf/tld_data_map.
 *  - Without a map, or without the privilege to use it, values keep working as plain
 *    thread-locals, and tld_get_status() says why.
 *  - Typed helpers: TLD_DEFINE_HINT() in C, tld::hint<T> in C++.
 *
 * Link with -ltld (pkg-config: tld). Threads are POSIX threads. Keys are C identifiers of
 * at most 61 bytes, so that BPF programs can name them; a process has at most
 * TLD_MAX_DATA_CNT keys (63 on 4 KiB pages), whose values (each rounded up to 8 bytes) share
 * one page per thread.
 */
#ifndef TLD_H
#define TLD_H

#include <errno.h>
#include <linux/types.h>
#include <stddef.h>
#include <unistd.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of a key's name field in the metadata page, its terminating NUL included. */
#define TLD_NAME_LEN 62

/* The size of a page: one per thread holds the values, one per process the keys. */
#define TLD_PAGE_SIZE ((size_t)sysconf(_SC_PAGESIZE))

/* @x rounded up to a multiple of @y: the room a value of @x bytes takes is TLD_ROUND_UP(x, 8). */
#define TLD_ROUND_UP(x, y) ((((x) + (y) - 1) / (y)) * (y))

/* One key in the process's metadata page, as BPF reads it. */
struct tld_metadata {
	char name[TLD_NAME_LEN];	/* NUL-terminated and NUL-padded */
	__u16 size;			/* the value's size; 0 while the entry is being written */
};

/* The most keys a process can have: the metadata page less its 4-byte head, in entries. */
#define TLD_MAX_DATA_CNT (TLD_PAGE_SIZE / sizeof(struct tld_metadata) - 1)

/*
 * The head of a thread's page: the offset of its first value. Values follow in the order of
 * the metadata page, each rounded up to 8 bytes. (sizeof(struct tld_data_u) is 8, as in the
 * selftests library.)
 */
struct tld_data_u {
	__u64 start;
};

/*
 * A key: where the value lies in each thread's page. Create one with TLD_DEFINE_KEY() or
 * tld_create_key(). A negative off is the -errno of a key that could not be created; 0 is
 * never a valid key.
 */
typedef struct tld_key {
	__s16 off;
} tld_key_t;

/*
 * tld_create_key() - create a key named @name whose values have @size bytes.
 *
 * Every thread's value starts at zero. BPF programs find the key by @name. Safe to call from
 * many threads at once: exactly one creation of a name succeeds.
 *
 * Returns the key; check it with tld_key_is_err(). Errors (as -errno in the key):
 *  -EEXIST  a key of that name exists (created by any part of the process);
 *  -E2BIG   the value does not fit in what is left of a thread's page;
 *  -ENOSPC  every entry of the metadata page is taken;
 *  -EINVAL  @name is not a C identifier of at most TLD_NAME_LEN - 1 bytes, or @size is 0.
 */
tld_key_t tld_create_key(const char *name, size_t size);

/*
 * tld_find_key() - the key named @name, created by any part of the process, or -ENOENT in the
 * key. (An addition to the selftests library's interface.)
 */
tld_key_t tld_find_key(const char *name);

/* Whether @key holds an error instead of a key (or was never created: zero). */
static inline bool tld_key_is_err(tld_key_t key)
{
	return key.off <= 0;
}

/* The -errno that @key holds (-EINVAL for a key never created), or 0 for a valid key. */
static inline int tld_key_err_or_zero(tld_key_t key)
{
	if (key.off > 0)
		return 0;
	return key.off < 0 ? key.off : -EINVAL;
}

/*
 * TLD_DEFINE_KEY() - define a global key @key named @name with values of @size bytes,
 * created before main() runs (by a constructor). Use at file scope, once per key, followed
 * by a semicolon: TLD_DEFINE_KEY(prio_key, "priority", sizeof(int));
 *
 * Check it with tld_key_is_err() before use; the errors are those of tld_create_key().
 */
#define TLD_DEFINE_KEY(key, name, size)						\
	tld_key_t key;								\
	__attribute__((constructor(101))) static void tld__define_##key(void)	\
	{									\
		key = tld_create_key((name), (size));				\
	}									\
	extern tld_key_t key

/* The calling thread's page, or NULL before its first tld_get_data(). Not for direct use. */
extern __thread char *__tld_thread_page;

/*
 * The part of tld_get_data() that runs when the thread has no page yet. Not for direct use.
 * Cold: the compiler keeps it, and what it needs, off the fast path of its callers.
 */
void *tld__get_data_slow(int map_fd, tld_key_t key) __attribute__((cold));

/*
 * tld_get_data() - the calling thread's value of @key.
 *
 * @map_fd: a file descriptor of a tld_data_map, or -1. Read only when the thread has no page
 * yet: if it names a map other than the last one given here, the runtime connects to it
 * (every live thread moves to it, as with tld_connect_fd()), as the selftests library
 * registers threads in the map it is given. With -1 the runtime's own connection applies.
 *
 * The first call on a thread gives it a page and registers it (system calls, an allocation);
 * every later call is a thread-local load and an add. The pointer is 8-byte aligned and stays
 * valid until the thread exits or calls tld_free(). BPF programs may write the value at any
 * time.
 *
 * Returns NULL for an invalid key, and on a thread that could not get a page (no memory, or a
 * call from a thread-specific data destructor after the page was released at exit). Without a
 * map the pointer works all the same, as a plain thread-local (tld_get_status() says why).
 */
static inline void *tld_get_data(int map_fd, tld_key_t key)
{
	char *page = __tld_thread_page;

	if (__builtin_expect(page != NULL && key.off > 0, 1))
		return page + key.off;
	return tld__get_data_slow(map_fd, key);
}

/*
 * tld_free() - give the calling thread's page back now.
 *
 * Optional: a thread's page is given back as it exits. After tld_free(), pointers from
 * tld_get_data() must not be used again (the page may go to another thread); the thread's
 * next tld_get_data() gives it a new page, whose values start at zero.
 */
void tld_free(void);

/*
 * tld_connect_fd() - use the tld_data_map behind @map_fd from now on (the fd is duplicated),
 * and register every thread that has a page in it. Connecting to another map later (a
 * restarted scheduler) moves every thread to it, with its values. All or nothing: on failure
 * the previous connection stays.
 *
 * Returns 0 or -errno (-EINVAL: not a task local data map; -EPERM/-EACCES; -EOPNOTSUPP: the
 * kernel lacks user pointers in task storage, Linux 6.13).
 */
int tld_connect_fd(int map_fd);

/*
 * tld_connect_pinned() - open the tld_data_map pinned at @path in bpffs and connect to it,
 * as tld_connect_fd() does, and keep following the path: a map pinned there later (a
 * restarted scheduler) is connected to, every thread moving to it. -ENOENT if nothing is
 * pinned there.
 */
int tld_connect_pinned(const char *path);

/*
 * tld_thread_init() - give the calling thread its page and register it now, or say why it is
 * not registered: 0 or -errno.
 */
int tld_thread_init(void);

/* How this part of the process relates to the runtime (struct tld_status.sharing). */
enum tld_sharing {
	TLD_SHARING_SERVING = 0,	/* libtld serves the process: other parts joined it */
	TLD_SHARING_JOINED = 1,		/* libtld joined the runtime another part serves */
	TLD_SHARING_ISOLATED = 2,	/* another runtime of an unknown protocol serves: hints
					 * stay thread-local and nothing is registered */
	TLD_SHARING_UNSHARED = 3,	/* libtld serves without knowing of other runtimes */
};

/* The runtime's link to the kernel (struct tld_status.connection). */
enum tld_connection {
	TLD_NOT_ATTEMPTED = 0,		/* no thread has asked for a page yet */
	TLD_CONNECTED = 1,		/* threads' pages are registered in a map */
	TLD_DETACHED = 2,		/* values work as thread-locals; see error and reason */
};

/* A snapshot of the runtime, from tld_get_status(). Strings are NUL-terminated. */
struct tld_status {
	int connection;			/* enum tld_connection */
	int error;			/* TLD_DETACHED: why, as -errno; 0 otherwise */
	__u32 map_id;			/* TLD_CONNECTED: the map's id (bpftool map show id N) */
	char map_name[16];		/* TLD_CONNECTED: the map's name */
	char reason[256];		/* TLD_DETACHED: why, in words */
	char last_error[256];		/* why the last change of map failed, or "" */
	__u32 published_keys;		/* keys BPF can find */
	__u32 data_bytes;		/* bytes of each thread's page the values use */
	__u32 data_capacity;		/* bytes of each thread's page for values */
	__u32 live_threads;		/* threads that have a page */
	__u32 registered_threads;	/* of those, threads registered in the map */
	__u32 parts;			/* copies of the runtime sharing it (1 for libtld alone) */
	int sharing;			/* enum tld_sharing */
	__u64 runtime_id;		/* the same in every part that shares the runtime */
	/* Added after the first release: a caller built before them passes a smaller @size. */
	__u64 registration_failures;	/* threads whose registration in a map failed */
	char last_registration_error[256]; /* the last such failure, or "" */
	int watcher;			/* 1 while the watcher thread runs (tld_set_watcher()) */
};

/*
 * tld_get_status() - fill @status (@size: sizeof(*status)) with the runtime's state.
 * Returns 0, or -EINVAL for a NULL @status.
 */
int tld_get_status(struct tld_status *status, size_t size);

/*
 * tld_set_watcher() - allow (@on non-zero, the default) or forbid the watcher thread,
 * "tld-watch", which follows the map's pin (a scheduler started later, or restarted) and the
 * guard's repairs. Forbidden, a running watcher ends at its next wake, and the runtime changes
 * map only when asked (tld_connect_fd(), tld_connect_pinned()). TLD_WATCH_INTERVAL_MS=0 in the
 * environment forbids it too.
 */
void tld_set_watcher(int on);

/* A compiler barrier: the typed helpers read and write the value where it lies, every time. */
#define TLD__BARRIER() __asm__ __volatile__("" ::: "memory")

/*
 * TLD_DEFINE_HINT() - a typed key: TLD_DEFINE_HINT(int, priority, "priority"); defines, at
 * file scope, the key priority_key (as TLD_DEFINE_KEY does) and
 *
 *	int *priority_ptr(void);	the calling thread's value, or NULL
 *	void priority_set(int value);	store it (nothing happens without a page)
 *	int priority_get(void);		read it (zero without a page)
 *
 * @type must be copyable with plain assignment.
 */
#define TLD_DEFINE_HINT(type, hint, name)					\
	TLD_DEFINE_KEY(hint##_key, name, sizeof(type));				\
	__attribute__((unused)) static inline type *hint##_ptr(void)		\
	{									\
		return (type *)tld_get_data(-1, hint##_key);			\
	}									\
	__attribute__((unused)) static inline void hint##_set(type value)	\
	{									\
		type *p = hint##_ptr();						\
		if (p) {							\
			TLD__BARRIER();						\
			*p = value;						\
			TLD__BARRIER();						\
		}								\
	}									\
	__attribute__((unused)) static inline type hint##_get(void)		\
	{									\
		type value;							\
		type *p = hint##_ptr();						\
		__builtin_memset(&value, 0, sizeof(value));			\
		if (p) {							\
			TLD__BARRIER();						\
			value = *p;						\
			TLD__BARRIER();						\
		}								\
		return value;							\
	}									\
	extern tld_key_t hint##_key

#ifdef __cplusplus
} /* extern "C" */

#include <type_traits>

namespace tld {

/*
 * A typed key for C++: tld::hint<int> prio("priority"); prio.set(5); int p = prio.get();
 * Construct it once (a global or a function-local static); the key is created then.
 */
template <typename T>
class hint {
	static_assert(std::is_trivially_copyable<T>::value, "a hint's type must be trivially copyable");
	static_assert(alignof(T) <= 8, "a hint's type may need alignment 8 at most");

public:
	explicit hint(const char *name) : key_(tld_create_key(name, sizeof(T))) {}

	/* Whether the key was created; error() says why not (-errno). */
	bool ok() const { return !tld_key_is_err(key_); }
	int error() const { return tld_key_err_or_zero(key_); }
	tld_key_t key() const { return key_; }

	/* The calling thread's value, or nullptr. */
	T *ptr() const { return static_cast<T *>(tld_get_data(-1, key_)); }

	void set(const T &value) const
	{
		if (T *p = ptr()) {
			TLD__BARRIER();
			*p = value;
			TLD__BARRIER();
		}
	}

	T get() const
	{
		T value{};
		if (T *p = ptr()) {
			TLD__BARRIER();
			value = *p;
			TLD__BARRIER();
		}
		return value;
	}

private:
	tld_key_t key_;
};

} /* namespace tld */
#endif /* __cplusplus */

#endif /* TLD_H */
