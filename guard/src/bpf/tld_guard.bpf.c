// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tld_guard.bpf.c - the tld guard: a thread's hints count only if its own
 * process registered them.
 *
 * tld_guard_stamp runs after every task-storage update in the kernel
 * (fexit on bpf_local_storage_update, which every update, from user space or
 * from BPF, goes through; the owner task is resolved by then, so no file
 * descriptor race is left). For an update from user space of the guarded
 * tld_data_map, it looks at the element the update installed:
 *  - the updating task is of the element's task's process: the element gets
 *    its stamp (tld_guard.bpf.h), and readers built with TLD_GUARD take it;
 *  - otherwise the element gets the mark of a spoofed one (TLD_GUARD_SPOOFED),
 *    which readers refuse, and the victim's process is told through
 *    tld_guard_events, which its runtime watches to register again the
 *    threads whose elements carry the mark.
 * If another update of the same element came in between, the element is left
 * to that update's own run of this program.
 *
 * tld_guard_refuse (lsm/bpf, sleepable) refuses such an update before it
 * happens, where the kernel runs BPF LSM programs: it reads the pidfd the
 * update names and finds its task. It reads the key from user memory and
 * the caller's file table as they are at that moment, so a caller that
 * changes them meanwhile can slip past it: it is a first line of defence
 * only, and the stamp decides.
 *
 * The loader (the tld-guard crate) reuses the guarded program's tld_data_map
 * and tld_guard_key, writes the key's secret, sets guarded_map_id, runs
 * tld_guard_publish once and attaches both programs.
 */
#include "tld_vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define TLD_GUARD
/* The guard looks no keys up: one slot, to give the cache struct a member. */
struct tld_offsets {
	__s16 __none;
};
#include "task_local_data.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* CO-RE views of the kernel's types, only the fields read here. */
struct bpf_map___tld_guard {
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_local_storage_data___tld_guard {
	__u8 data[8];
} __attribute__((preserve_access_index));

struct upid___tld_guard {
	int nr;
} __attribute__((preserve_access_index));

struct pid___tld_guard {
	struct upid___tld_guard numbers[1];
} __attribute__((preserve_access_index));

struct inode___tld_guard {
	void *i_private;
} __attribute__((preserve_access_index));

struct file___tld_guard {
	const void *f_op;
	struct inode___tld_guard *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable___tld_guard {
	unsigned int max_fds;
	struct file___tld_guard **fd;
} __attribute__((preserve_access_index));

struct files_struct___tld_guard {
	struct fdtable___tld_guard *fdt;
} __attribute__((preserve_access_index));

struct task_struct___tld_guard {
	int pid;
	int tgid;
	struct files_struct___tld_guard *files;
} __attribute__((preserve_access_index));

extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
/* The file operations of pidfds: a file with these is a pidfd. */
extern const void pidfs_file_operations __ksym __weak;

/* Set by the loader: the id of the guarded tld_data_map. */
const volatile __u32 guarded_map_id = 0;

/* What the guard saw of one process's threads, by its thread group id. */
struct tld_guard_event {
	__u64 spoofed;		/* updates by another process left unstamped */
	__u64 refused;		/* updates by another process refused before they happened */
	__s32 last_tid;		/* the thread of the last of them */
	__s32 last_writer;	/* the process that made it */
};

/*
 * Readable by user space, writable only by BPF (BPF_F_RDONLY, 1 << 3): the
 * runtime of a process looks its own entry up and registers its threads
 * again when it changes.
 */
struct {
	__uint(type, 1);	/* BPF_MAP_TYPE_HASH */
	__uint(max_entries, 4096);
	__uint(map_flags, 1U << 3);
	__type(key, __u32);
	__type(value, struct tld_guard_event);
} tld_guard_events SEC(".maps");

/*
 * Key 0 of tld_guard_events (no process has thread group id 0) describes the
 * guard itself: its spoofed member holds guarded_map_id, so that a runtime
 * checks its registrations for the stamp in the guarded map only, and its
 * last_writer the loader's thread group id: the guard's programs stay
 * attached while that process lives (its links end with it), which is how a
 * runtime tells a dead guard's leftover pin from a live guard whose program
 * the kernel skipped now and then. tld_guard_publish writes it; the loader
 * runs it once, after loading.
 */
SEC("syscall")
int tld_guard_publish(void *ctx)
{
	struct tld_guard_event self = {
		.spoofed = guarded_map_id,
		.last_writer = bpf_get_current_pid_tgid() >> 32,
	};
	__u32 zero = 0;

	return bpf_map_update_elem(&tld_guard_events, &zero, &self, 0 /* BPF_ANY */);
}

/* Counters for tests and operators: what each program did. */
__u64 stamped, spoofed, refused, raced;

static __always_inline void note(__u32 tgid, __s32 tid, __s32 writer, int was_refused)
{
	struct tld_guard_event fresh = {}, *e;

	e = bpf_map_lookup_elem(&tld_guard_events, &tgid);
	if (!e) {
		bpf_map_update_elem(&tld_guard_events, &tgid, &fresh, 1 /* BPF_NOEXIST */);
		e = bpf_map_lookup_elem(&tld_guard_events, &tgid);
		if (!e)
			return;
	}
	if (was_refused)
		__sync_fetch_and_add(&e->refused, 1);
	else
		__sync_fetch_and_add(&e->spoofed, 1);
	e->last_tid = tid;
	e->last_writer = writer;
}

/* An error pointer, as the kernel returns them: the last page of addresses. */
#define IS_ERR_VALUE(x) ((__u64)(x) >= (__u64)-4095)

SEC("fexit/bpf_local_storage_update")
int tld_guard_stamp(__u64 *ctx)
{
	__u64 owner_arg = 0, smap_arg = 0, swap_arg = 0, ret = 0;
	struct task_struct *owner_ref, *current;
	struct task_struct___tld_guard *owner;
	const struct tld_guard_key *key;
	struct tld_map_value *elem;
	struct tld_data_u *data;
	struct tld_meta_u *meta;
	__u32 id, owner_tgid;
	__u64 stamp;
	__s32 owner_pid;

	/* The owner, the map, swap_uptrs (true only for user space), the result. */
	if (bpf_get_func_arg(ctx, 0, &owner_arg) || bpf_get_func_arg(ctx, 1, &smap_arg) ||
	    bpf_get_func_arg(ctx, 4, &swap_arg) || bpf_get_func_ret(ctx, &ret))
		return 0;
	if (!smap_arg || !(swap_arg & 0xff) || !ret || IS_ERR_VALUE(ret))
		return 0;
	/* The function runs for every local-storage map: the guarded one only. */
	id = BPF_CORE_READ((struct bpf_map___tld_guard *)smap_arg, id);
	if (!guarded_map_id || id != guarded_map_id)
		return 0;

	owner = (struct task_struct___tld_guard *)owner_arg;
	owner_pid = BPF_CORE_READ(owner, pid);
	owner_tgid = BPF_CORE_READ(owner, tgid);
	current = bpf_get_current_task_btf();

	owner_ref = bpf_task_from_pid(owner_pid);
	if (!owner_ref)
		return 0;
	elem = bpf_task_storage_get(&tld_data_map, owner_ref, (void *)0, 0);
	/* The element this update installed, unless another one came since. */
	if (!elem || (void *)elem != (void *)(ret + bpf_core_field_offset(
					struct bpf_local_storage_data___tld_guard, data))) {
		__sync_fetch_and_add(&raced, 1);
		goto out;
	}
	key = __tld_guard_key();
	if (!key)
		goto out;
	data = elem->data;
	meta = elem->meta;
	/* An element without both pages gives readers nothing: leave it. */
	if (!data || !meta)
		goto out;
	stamp = __tld_guard_stamp_of(key, elem, data, meta, elem->start, owner_tgid);
	if ((__u32)current->tgid == owner_tgid) {
		__tld_guard_set_stamp(elem, stamp);
		__sync_fetch_and_add(&stamped, 1);
	} else {
		/* Whatever the writer put there: the mark of a spoofed element. */
		__tld_guard_set_stamp(elem, TLD_GUARD_SPOOFED);
		__sync_fetch_and_add(&spoofed, 1);
		note(owner_tgid, owner_pid, current->tgid, 0);
	}
out:
	bpf_task_release(owner_ref);
	return 0;
}

/* BPF_MAP_UPDATE_ELEM: the bpf() command this LSM program looks at. */
#define TLD_BPF_MAP_UPDATE_ELEM 2
/* errno */
#define TLD_EPERM 1

/* The file behind descriptor @fd of the calling task, or NULL. */
static __always_inline struct file___tld_guard *file_of(int fd)
{
	struct task_struct___tld_guard *me = (void *)bpf_get_current_task_btf();
	struct fdtable___tld_guard *fdt;
	struct file___tld_guard **table, *file = (void *)0;
	unsigned int max;

	if (fd < 0)
		return (void *)0;
	fdt = BPF_CORE_READ(me, files, fdt);
	if (!fdt)
		return (void *)0;
	max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max)
		return (void *)0;
	table = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &table[fd]))
		return (void *)0;
	return file;
}

SEC("lsm.s/bpf")
int BPF_PROG(tld_guard_refuse, int cmd, void *attr, unsigned int size)
{
	struct task_struct *target, *current = bpf_get_current_task_btf();
	struct file___tld_guard *map_file, *key_file;
	struct pid___tld_guard *pid;
	struct inode___tld_guard *inode;
	__u32 map_fd = 0, id;
	__u64 key_ptr = 0;
	int pidfd = 0, nr, ret = 0;
	void *map;

	if (cmd != TLD_BPF_MAP_UPDATE_ELEM || !guarded_map_id)
		return 0;
	/* union bpf_attr's map element fields: map_fd at 0, key at 8 (uapi ABI). */
	if (bpf_probe_read_kernel(&map_fd, sizeof(map_fd), attr) ||
	    bpf_probe_read_kernel(&key_ptr, sizeof(key_ptr), attr + 8))
		return 0;
	map_file = file_of(map_fd);
	if (!map_file)
		return 0;
	map = BPF_CORE_READ(map_file, private_data);
	if (!map)
		return 0;
	id = BPF_CORE_READ((struct bpf_map___tld_guard *)map, id);
	if (id != guarded_map_id)
		return 0;
	/* The key is a pidfd, in the caller's memory. */
	if (bpf_copy_from_user(&pidfd, sizeof(pidfd), (void *)key_ptr))
		return 0;
	key_file = file_of(pidfd);
	if (!key_file || !bpf_ksym_exists(&pidfs_file_operations) ||
	    BPF_CORE_READ(key_file, f_op) != (void *)&pidfs_file_operations)
		return 0;
	inode = BPF_CORE_READ(key_file, f_inode);
	pid = inode ? BPF_CORE_READ(inode, i_private) : (void *)0;
	if (!pid)
		return 0;
	nr = BPF_CORE_READ(pid, numbers[0].nr);
	target = bpf_task_from_pid(nr);
	if (!target)
		return 0;
	if (target->tgid != current->tgid) {
		note(target->tgid, target->pid, current->tgid, 1);
		__sync_fetch_and_add(&refused, 1);
		ret = -TLD_EPERM;
	}
	bpf_task_release(target);
	return ret;
}
