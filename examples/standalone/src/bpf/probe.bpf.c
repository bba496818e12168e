// SPDX-License-Identifier: MIT OR Apache-2.0
/* Reads the calling thread's request_class, for src/main.rs. */
#include "tld_generated.h"

char LICENSE[] SEC("license") = "GPL";	/* bpf_for's kfuncs need a GPL-compatible licence */

struct probe_ctx {
	__s64 init_ret;
	__s64 request_class;	/* -1 if absent */
};

SEC("syscall")
int read_class(struct probe_ctx *ctx)
{
	struct bpf_tld tld;
	__u32 *class;

	ctx->init_ret = bpf_tld_init(bpf_get_current_task_btf(), &tld);
	if (ctx->init_ret)
		return 0;
	class = bpf_tld_get(&tld, request_class);
	ctx->request_class = class ? *class : -1;
	return 0;
}
