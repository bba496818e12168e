/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Stands for the BPF selftests' harness in the kernel's task local data selftest, run against
 * libtld: the checks it makes (each counts a failure and says which), its subtests (the one
 * named by TLD_KSELFTEST_SUBTEST runs), and the libbpf calls it makes, done with bpf(2).
 */
#ifndef TLD_KSELFTEST_TEST_PROGS_H
#define TLD_KSELFTEST_TEST_PROGS_H

#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <linux/types.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern atomic_int kselftest_failures;
extern int kselftest_subtests_run;

static inline void kselftest_fail(const char *file, int line, const char *what, const char *name)
{
	atomic_fetch_add(&kselftest_failures, 1);
	fprintf(stderr, "FAIL %s:%d: %s (%s)\n", file, line, name, what);
}

/* Each check evaluates to whether it held. */
#define KSELFTEST_CHECK(ok, what, name)						\
	({									\
		bool ok_ = (ok);						\
		if (!ok_)							\
			kselftest_fail(__FILE__, __LINE__, what, name);		\
		ok_;								\
	})

#define ASSERT_OK(res, name) KSELFTEST_CHECK((res) == 0, "expected 0: " #res, name)
#define ASSERT_OK_PTR(ptr, name) KSELFTEST_CHECK((ptr) != NULL, "expected a pointer: " #ptr, name)
#define ASSERT_FALSE(cond, name) KSELFTEST_CHECK(!(cond), "expected false: " #cond, name)
#define ASSERT_EQ(actual, expected, name)					\
	({									\
		long long a_ = (long long)(actual), e_ = (long long)(expected);	\
		bool ok_ = KSELFTEST_CHECK(a_ == e_, #actual " == " #expected, name); \
		if (!ok_)							\
			fprintf(stderr, "  got %lld, expected %lld\n", a_, e_);	\
		ok_;								\
	})
/* True (and a failure) when @cond holds. */
#define CHECK_FAIL(cond) (!KSELFTEST_CHECK(!(cond), "expected not: " #cond, "CHECK_FAIL"))

/* Whether the subtest @name is the one to run. */
static inline bool test__start_subtest(const char *name)
{
	const char *wanted = getenv("TLD_KSELFTEST_SUBTEST");

	if (!wanted || strcmp(wanted, name) != 0)
		return false;
	printf("subtest %s\n", name);
	kselftest_subtests_run++;
	return true;
}

static inline pid_t sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* libbpf's objects, as far as the test uses them: a file descriptor each. */
struct bpf_map {
	int fd;
};

struct bpf_program {
	int fd;
};

static inline int bpf_map__fd(const struct bpf_map *map)
{
	return map->fd;
}

static inline int bpf_program__fd(const struct bpf_program *prog)
{
	return prog->fd;
}

struct bpf_test_run_opts {
	size_t sz;
	__u32 retval;
};

#define LIBBPF_OPTS(type, name, ...) struct type name = { .sz = sizeof(struct type), __VA_ARGS__ }

/* Runs a SEC("syscall") program as the calling thread, without a context. */
static inline int bpf_prog_test_run_opts(int prog_fd, struct bpf_test_run_opts *opts)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = prog_fd;
	if (syscall(SYS_bpf, BPF_PROG_TEST_RUN, &attr, sizeof(attr)))
		return -errno;
	opts->retval = attr.test.retval;
	return 0;
}

#endif
