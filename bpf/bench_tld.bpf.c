// SPDX-License-Identifier: MIT OR Apache-2.0
#include "tld_vmlinux.h"
#include "tld_generated.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int exp_tc(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tld_map_value *v = bpf_task_storage_get(&tld_data_map, task, 0, 0);
	if (!v || !v->data)
		return 1;
	return *(__u64 *)((void *)v->data + 8);
}

SEC("socket")
int exp_sock(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tld_map_value *v = bpf_task_storage_get(&tld_data_map, task, 0, 0);
	if (!v || !v->data)
		return 1;
	return *(__u64 *)((void *)v->data + 8);
}

SEC("xdp")
int exp_xdp(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tld_map_value *v = bpf_task_storage_get(&tld_data_map, task, 0, 0);
	if (!v || !v->data)
		return 1;
	return *(__u64 *)((void *)v->data + 8);
}

SEC("xdp")
int exp_xdp_empty(void *ctx)
{
	return 7;
}
SEC("tc")
int exp_tc_empty(void *ctx)
{
	return 7;
}
SEC("xdp")
int exp_xdp_task(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	return task->pid;
}
SEC("xdp")
int exp_xdp_two(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tld_map_value *v = bpf_task_storage_get(&tld_data_map, task, 0, 0);
	struct tld_off_cache *c = bpf_task_storage_get(&tld_off_map, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!v || !v->data || !c)
		return 1;
	return *(__u64 *)((void *)v->data + 8);
}
