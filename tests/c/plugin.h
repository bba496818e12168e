/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * plugin.h - what the test plugins (tests/plugins/a and b, Rust cdylibs that declare their own
 * hints) export, for the C hosts of the libtld tests. Mirrored by tld_test_plugin_common.
 */
#ifndef TLD_TEST_PLUGIN_H
#define TLD_TEST_PLUGIN_H

#include <linux/types.h>

/* A part's tld_runtime::status(), as the plugin sees it. */
struct plugin_info {
	int sharing;		/* 0 serving, 1 joined, 2 isolated, 3 unshared */
	int connected;		/* 1 if connected */
	__u32 parts;
	__u32 hints;		/* the plugin's own hints */
	__u32 published_keys;
	__u32 live_threads;
	__u64 runtime_id;
	char problem[256];	/* why detached, or "" */
};

/* plugin A: "plugin_a_count" (u64, initially 7) and "plugin_a_flag" (u32, initially 1). */
typedef void (*plugin_a_set_fn)(__u64 count, __u32 flag);
typedef void (*plugin_a_get_fn)(__u64 *count, __u32 *flag);
/* plugin B: "plugin_b_level" (i32, initially -3) and the consistent "plugin_b_budget"
 * ([u32; 2], initially {5, 6}). */
typedef void (*plugin_b_set_fn)(__s32 level, __u32 b0, __u32 b1);
typedef void (*plugin_b_get_fn)(__s32 *level, __u32 *b0, __u32 *b1);
/* Both: plugin_X_info(), plugin_X_thread_init() (0 or -errno). */
typedef void (*plugin_info_fn)(struct plugin_info *out);
typedef int (*plugin_thread_init_fn)(void);

#endif /* TLD_TEST_PLUGIN_H */
