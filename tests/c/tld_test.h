/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * tld_test.h - helpers of the C programs of the libtld tests: file descriptors the Rust test
 * passes in the environment, BPF_PROG_TEST_RUN without libbpf, checks that count failures.
 */
#ifndef TLD_TEST_H
#define TLD_TEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <linux/types.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tld_c.h"

static atomic_int test_failures;

/* Counts and reports a failed check; evaluates to whether @cond held. */
#define CHECK(cond, ...)							\
	({									\
		int ok__ = !!(cond);						\
		if (!ok__) {							\
			atomic_fetch_add(&test_failures, 1);			\
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);				\
			fputc('\n', stderr);					\
		}								\
		ok__;								\
	})

/* The file descriptor the test put in environment variable @name; exits if there is none. */
static inline int env_fd(const char *name)
{
	const char *v = getenv(name);

	if (!v) {
		fprintf(stderr, "%s is not set\n", name);
		exit(2);
	}
	return atoi(v);
}

static inline pid_t test_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Runs the SEC("syscall") program @prog_fd as the calling thread with @ctx (@size bytes) as
 * its context, which the kernel writes back. Returns the program's return value, or -errno. */
static inline int bpf_run(int prog_fd, void *ctx, __u32 size)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = prog_fd;
	attr.test.ctx_in = (__u64)(unsigned long)ctx;
	attr.test.ctx_size_in = size;
	if (syscall(SYS_bpf, BPF_PROG_TEST_RUN, &attr, sizeof(attr)))
		return -errno;
	return (int)attr.test.retval;
}

/* What tld_c_read sees of the calling thread. */
static inline struct tld_c_read bpf_read_self(int prog_fd)
{
	struct tld_c_read r;

	memset(&r, 0, sizeof(r));
	CHECK(bpf_run(prog_fd, &r, sizeof(r)) == 0, "running tld_c_read");
	return r;
}

#endif /* TLD_TEST_H */
