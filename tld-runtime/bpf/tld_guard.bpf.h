/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * tld_guard.bpf.h - the guard's stamp: proof that a tld_data_map element was
 * registered by a task of the thread's own process.
 *
 * Anyone who may write tld_data_map can register pages for another process's
 * threads (a pidfd of the victim's thread and one update). The guard (the
 * tld-guard crate) answers with a BPF program on the kernel function every
 * task-storage update goes through: after an update from user space of a
 * guarded map, it stamps the new element if the updating task and the
 * element's task are of one process, and leaves it unstamped otherwise.
 * Readers built with TLD_GUARD (task_local_data.bpf.h) use an element only if
 * its stamp is right; the tld inspector shows it.
 *
 * The stamp is a keyed hash of what the element names: the kernel addresses
 * of its two pages (taken relative to the element's own address, which the
 * verifier lets a program turn into numbers: pointer minus pointer), its
 * start, and the thread group of its task. It lives in
 * the six bytes after start in the 7.x generation's 24-byte value (the 6.18
 * value has no room for it). The key is a secret that the guard's loader
 * draws from the system's random source, writes into tld_guard_key and then
 * freezes: that map is write-only from user space, so after the freeze no
 * process can read or change it through the bpf() system call, while BPF
 * programs read it. User space can read stamps (a lookup returns the value's
 * bytes after the pointers, whose kernel addresses it never sees), but
 * cannot make one for its own pages without the key: copying another
 * element's stamp does not help, since the stamp covers the pages' kernel
 * addresses and the process. For a moment after an update the element holds
 * what the writer put there; a reader takes it only if it is the right hash.
 *
 * Programs that include this header share tld_guard_key with the guard (the
 * guard's loader reuses the program's map), and enable the check at load
 * time (see TLD_GUARD in task_local_data.bpf.h).
 */
#ifndef __TLD_GUARD_BPF_H
#define __TLD_GUARD_BPF_H

/* Byte offset of the stamp in the 7.x value: right after start. */
#define TLD_GUARD_STAMP_OFFSET 18

/* The stamp's bits: 48, the room after start. */
#define TLD_GUARD_STAMP_MASK ((1ULL << 48) - 1)

/*
 * The stamp the guard writes on an element that another process registered:
 * all ones, a value no right stamp takes (__tld_guard_mac() never returns
 * it). Readers refuse it like any wrong stamp; the runtime of the thread's
 * process looks for it to find which of its threads to register again.
 */
#define TLD_GUARD_SPOOFED TLD_GUARD_STAMP_MASK

/* tld_guard_key's ready word once the loader has written the secret ("tldgkey1"). */
#define TLD_GUARD_READY 0x3179656b67646c74ULL

/* The key: a 256-bit secret, and whether it has been written. */
struct tld_guard_key {
	__u64 k[4];
	__u64 ready;		/* TLD_GUARD_READY, else no stamp is valid */
};

/*
 * BPF_MAP_TYPE_ARRAY (2) with one element, BPF_F_WRONLY (1 << 4): user space
 * may write it (once, before the loader freezes it) but never read it.
 *
 * A loader that keeps its data map pinned across restarts should keep this
 * map too, or the stamps of threads registered before a restart stop
 * verifying: tld_guard::Guard::pin_key() pins it (root only), and
 * tld_guard::open_pinned_key() opens it again, write-only, for the next load
 * to reuse; the guard's loader then finds it frozen and keeps its secret. It
 * is not pinned by libbpf (LIBBPF_PIN_BY_NAME): the kernel keeps the
 * write-only flag with the file descriptor, not with the map, so libbpf
 * would find the pinned map's flags different and refuse to reuse it.
 */
struct {
	__uint(type, 2);
	__uint(max_entries, 1);
	__uint(map_flags, 1U << 4);
	__type(key, __u32);
	__type(value, struct tld_guard_key);
} tld_guard_key SEC(".maps") __attribute__((weak));

/* One round of the stamp's mixing: a multiply and a shift, then the next word. */
#define __TLD_GUARD_MIX(h, word, mul, shift)					\
	do {									\
		(h) ^= (word);							\
		(h) *= (mul);							\
		(h) ^= (h) >> (shift);						\
	} while (0)

/*
 * __tld_guard_mac() - the stamp of an element naming pages @data and @meta,
 * given as their kernel addresses less the element's own address (see
 * __tld_guard_stamp_of()), @start, for a task of thread group @tgid: 48 bits
 * of a keyed hash. A few multiplications and shifts: bpf_tld_init() computes
 * it on every call.
 */
static __always_inline __u64 __tld_guard_mac(const struct tld_guard_key *key, __u64 data,
					     __u64 meta, __u64 start, __u64 tgid)
{
	__u64 h = key->k[0];

	__TLD_GUARD_MIX(h, data ^ key->k[1], 0x9e3779b97f4a7c15ULL, 31);
	__TLD_GUARD_MIX(h, meta ^ key->k[2], 0xbf58476d1ce4e5b9ULL, 29);
	__TLD_GUARD_MIX(h, ((start & 0xffff) << 32 | (tgid & 0xffffffff)) ^ key->k[3],
			0x94d049bb133111ebULL, 32);
	h += key->k[1] ^ key->k[2];
	__TLD_GUARD_MIX(h, key->k[3], 0xd6e8feb86659fd93ULL, 32);
	h &= TLD_GUARD_STAMP_MASK;
	/* TLD_GUARD_SPOOFED is reserved. */
	return h == TLD_GUARD_SPOOFED ? h - 1 : h;
}

/*
 * The stamp that the element @value, naming pages @data and @meta (its uptr
 * fields, checked non-NULL), must carry: the pointers become numbers by
 * subtracting the element's address, the only arithmetic the verifier allows
 * on two pointers.
 */
#define __tld_guard_stamp_of(key, value, data, meta, start, tgid)		\
	__tld_guard_mac((key), (__u64)((const char *)(data) - (const char *)(value)), \
			(__u64)((const char *)(meta) - (const char *)(value)),	\
			(__u64)(start), (__u64)(tgid))

/* The stamp stored in the 7.x value at @value: 16 bits, then 32. */
static __always_inline __u64 __tld_guard_stamp(const void *value)
{
	__u64 hi = *(volatile __u16 *)((const char *)value + TLD_GUARD_STAMP_OFFSET);
	__u64 lo = *(volatile __u32 *)((const char *)value + TLD_GUARD_STAMP_OFFSET + 2);

	return hi << 32 | lo;
}

/* Stores @stamp (48 bits) into the 7.x value at @value. */
static __always_inline void __tld_guard_set_stamp(void *value, __u64 stamp)
{
	*(volatile __u16 *)((char *)value + TLD_GUARD_STAMP_OFFSET) = stamp >> 32;
	*(volatile __u32 *)((char *)value + TLD_GUARD_STAMP_OFFSET + 2) = (__u32)stamp;
}

/* The key, if the loader has written it; NULL otherwise. */
static __always_inline const struct tld_guard_key *__tld_guard_key(void)
{
	__u32 zero = 0;
	const struct tld_guard_key *key = bpf_map_lookup_elem(&tld_guard_key, &zero);

	if (!key || key->ready != TLD_GUARD_READY)
		return (void *)0;
	return key;
}

#endif /* __TLD_GUARD_BPF_H */
