// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_iter.bpf.c - the tld inspector's task iterator.
 *
 * An iter/task program: the kernel calls it once for every task (every thread
 * of every process). For a task that has an element in tld_data_map, it copies
 * to the iterator's seq_file one record:
 *
 *   struct tld_iter_rec      the header below: pid, tid, comm, lengths, and
 *                            the value's start in the 7.x generation
 *   data_len bytes           the thread's data page, as the element's data
 *                            pointer names it
 *   meta_len bytes           the process's metadata page, as the element's
 *                            meta pointer names it
 *
 * User space (src/iter.rs) reads the records and decodes the pages; it treats
 * every byte of them as untrusted. Nothing here writes to a page, an element
 * or a map: bpf_task_storage_get() is called without F_CREATE.
 *
 * tld_data_map is not created by this program: the loader points it at the
 * inspected map (bpf_map__reuse_fd) before load. The verifier then types the
 * element's two pointers from *that map's* BTF (the __uptr fields of its
 * value): each is a pointer to memory of the size of its pointee struct, or
 * NULL. bpf_seq_write() may copy exactly that many bytes from it, and the
 * loader sets params.data_size and params.meta_size to those sizes, read from the map's BTF,
 * before load. The pages are pinned for as long as the element exists, and
 * the element outlives this program's RCU read-side section, so the copies
 * never touch freed memory.
 *
 * What the verifier allows through those pointers (checked on Linux 6.18):
 *  - each must be tested against NULL before any use;
 *  - a helper such as bpf_seq_write() may read up to the pointee's size
 *    through it; one byte more is refused at load time ("invalid access to
 *    memory, mem_size=4036 ..."), which is why the sizes come from the map's
 *    BTF and not from this file;
 *  - the read-only mode of the map fd the loader passes does not restrict the
 *    program: a store through the pointer, or F_CREATE, would load just the
 *    same. This program is read-only because it contains neither.
 */
#include "tld_cli_vmlinux.h"
#include <bpf/bpf_helpers.h>
/* The guard's stamp, to tell each element registered by its thread's own process. */
#include "tld_guard.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#ifndef __uptr
#define __uptr __attribute__((btf_type_tag("uptr")))
#endif

/* "TLDR": the start of every record. */
#define TLD_ITER_MAGIC 0x52444c54

/* The pages are opaque here: user space decodes them. */
struct tld_page;

/*
 * The value of tld_data_map: two user pages the kernel pinned on update, and
 * in the 7.x generation __u16 start at byte 16. The inspected map's own value
 * (16 or 24 bytes) is what the verifier checks accesses against, since the
 * loader reuses that map's fd; start is read only when start_in_value says
 * the map has it, and the verifier never walks the branch otherwise.
 */
struct tld_map_value {
	struct tld_page __uptr *data;	/* the thread's data page */
	struct tld_page __uptr *meta;	/* the process's metadata page */
};

/* Where 7.x's value keeps start. */
#define TLD_VALUE_START_OFFSET 16

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tld_map_value);
} tld_data_map SEC(".maps");

/* One record's header; mirrored by RecordHeader in src/iter.rs. */
struct tld_iter_rec {
	__u32 magic;		/* TLD_ITER_MAGIC */
	__u32 rec_size;		/* bytes of the record, this header included */
	__s32 pid;		/* the task's thread group id */
	__s32 tid;		/* the task's id */
	char comm[16];		/* the task's name, NUL-padded */
	char pcomm[16];		/* its process's name (the group leader's), NUL-padded */
	__u32 data_len;		/* bytes of the data page that follow; 0: no data pointer */
	__u32 meta_len;		/* bytes of the metadata page after them; 0: no meta pointer */
	__u32 value_start;	/* the value's start (7.x); 0 in the 6.18 generation */
	__u32 flags;		/* TLD_ITER_* */
};

#define TLD_ITER_START_IN_VALUE 1	/* value_start is the value's */
#define TLD_ITER_GUARDED 2		/* a guard stamps this map's elements: see TLD_ITER_OWN */
#define TLD_ITER_OWN 4			/* the element carries its process's stamp */

_Static_assert(sizeof(struct tld_iter_rec) == 64, "tld_iter_rec layout (mirrored in iter.rs)");

/*
 * Set by the loader before load (read-only data: the verifier sees constants).
 * The one variable of .rodata, at its start, so that the loader can write it
 * without a skeleton (mirrored by Params in src/iter.rs).
 */
struct tld_iter_params {
	__u32 data_size;	/* size of the data pointer's pointee in the map's BTF */
	__u32 meta_size;	/* size of the meta pointer's pointee in the map's BTF */
	__s32 target;		/* 0, or only tasks whose pid or tid is this */
	__u32 start_in_value;	/* 1: the map's value is 7.x's, with start */
	__u32 guarded;		/* 1: tld_guard_key is the guard's key map for this map */
};

const volatile struct tld_iter_params params = {
	.data_size = 4096,
	.meta_size = 4036,
};

#define data_size params.data_size
#define meta_size params.meta_size
#define target params.target
#define start_in_value params.start_in_value
#define guarded params.guarded

SEC("iter/task")
int tld_dump(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct task_struct___tld_cli *named = (void *)task, *leader;
	struct tld_iter_rec rec = {};
	struct tld_map_value *value;
	struct tld_page *data, *meta;

	if (!task)
		return 0;
	if (target && task->tgid != target && task->pid != target)
		return 0;
	value = bpf_task_storage_get(&tld_data_map, task, NULL, 0);
	if (!value)
		return 0;
	data = value->data;
	meta = value->meta;

	rec.magic = TLD_ITER_MAGIC;
	rec.pid = task->tgid;
	rec.tid = task->pid;
	__builtin_memcpy(rec.comm, named->comm, sizeof(rec.comm));
	leader = (struct task_struct___tld_cli *)named->group_leader;
	__builtin_memcpy(rec.pcomm, leader->comm, sizeof(rec.pcomm));
	rec.data_len = data ? data_size : 0;
	rec.meta_len = meta ? meta_size : 0;
	if (start_in_value) {
		rec.value_start = *(__u16 *)((void *)value + TLD_VALUE_START_OFFSET);
		rec.flags = TLD_ITER_START_IN_VALUE;
		if (guarded) {
			const struct tld_guard_key *key = __tld_guard_key();

			rec.flags |= TLD_ITER_GUARDED;
			if (key && data && meta &&
			    __tld_guard_stamp(value) ==
				    __tld_guard_stamp_of(key, value, data, meta, rec.value_start,
							 task->tgid))
				rec.flags |= TLD_ITER_OWN;
		}
	}
	rec.rec_size = sizeof(rec) + rec.data_len + rec.meta_len;

	/*
	 * If the seq_file buffer overflows part way, the kernel drops the whole
	 * record and calls this program again for the same task after the
	 * buffer has been read: records are never split or torn.
	 */
	bpf_seq_write(seq, &rec, sizeof(rec));
	if (data)
		bpf_seq_write(seq, data, data_size);
	if (meta)
		bpf_seq_write(seq, meta, meta_size);
	return 0;
}
