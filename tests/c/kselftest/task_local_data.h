/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Stands for the kernel's task local data library in its selftest: libtld's tld.h, which has
 * the same interface. Only the selftest's reset_tld() reaches further, into the library's own
 * metadata page, through tld_meta_p; libtld keeps that page to itself, so the pointer is NULL
 * here, and the reset does nothing (each subtest runs in a fresh process instead).
 */
#ifndef TLD_KSELFTEST_TASK_LOCAL_DATA_H
#define TLD_KSELFTEST_TASK_LOCAL_DATA_H

#include <tld.h>

struct tld_meta_u {
	__u16 cnt;
	__u16 size;
	struct tld_metadata metadata[];
};

static struct tld_meta_u *tld_meta_p;

#endif
