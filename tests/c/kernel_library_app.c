// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * kernel_library_app.c - an application written on the Linux kernel's own
 * task local data C library (prog_tests/task_local_data.h of the 7.x BPF
 * selftests), for the compatibility tests: tld's BPF header and the tld
 * inspector must read what it writes. It is built at test time against the
 * fetched library, which is never copied into this repository.
 *
 *   kernel_library_app PIN THREADS
 *
 * Opens the tld_data_map pinned at PIN and starts THREADS threads. Each one
 * sets value0 = tid, value1 = tid + 1 and value2 = { tid + 2, ..., tid + 5 }
 * through the library (which registers the thread on its first
 * tld_get_data()). Then the program prints "TIDS t1 t2 ..." and waits until
 * its standard input closes, so that the test can read the threads' hints.
 *
 * The tests build it twice: with TLD_DYN_DATA_SIZE=4000, so that each
 * thread's block is a whole page-aligned page (start = 8), and with the
 * library's default of 64 bytes, so that blocks are small and lie anywhere in
 * a page (start = the block's offset in its page + 8).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What the kernel's selftests give the library: a gettid and strscpy(). */
static inline pid_t sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

#define strscpy(dst, src)							\
	do {									\
		strncpy((dst), (src), sizeof(dst) - 1);				\
		(dst)[sizeof(dst) - 1] = '\0';					\
	} while (0)

#define TLD_FREE_DATA_ON_THREAD_EXIT
#include "task_local_data.h"

struct test_tld_struct {
	__u64 a, b, c, d;
};

TLD_DEFINE_KEY(value0_key, "value0", sizeof(int));
static tld_key_t value1_key, value2_key;
static int map_fd;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int ready, quit;
static pid_t *tids;

static void *thread_main(void *arg)
{
	long i = (long)arg;
	pid_t tid = sys_gettid();
	struct test_tld_struct *v2;
	int *v0, *v1;

	v0 = tld_get_data(map_fd, value0_key);
	v1 = tld_get_data(map_fd, value1_key);
	v2 = tld_get_data(map_fd, value2_key);
	if (!v0 || !v1 || !v2) {
		fprintf(stderr, "thread %ld: tld_get_data failed\n", i);
		exit(3);
	}
	*v0 = tid;
	*v1 = tid + 1;
	v2->a = tid + 2;
	v2->b = tid + 3;
	v2->c = tid + 4;
	v2->d = tid + 5;

	pthread_mutex_lock(&lock);
	tids[i] = tid;
	ready++;
	pthread_cond_broadcast(&changed);
	while (!quit)
		pthread_cond_wait(&changed, &lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t *threads;
	long n, i;
	char buf[64];

	if (argc != 3) {
		fprintf(stderr, "usage: %s PIN THREADS\n", argv[0]);
		return 2;
	}
	map_fd = bpf_obj_get(argv[1]);
	if (map_fd < 0) {
		fprintf(stderr, "bpf_obj_get(%s): %d\n", argv[1], map_fd);
		return 2;
	}
	n = atol(argv[2]);
	if (tld_key_is_err(value0_key)) {
		fprintf(stderr, "TLD_DEFINE_KEY(value0): %d\n", tld_key_err_or_zero(value0_key));
		return 3;
	}
	value1_key = tld_create_key("value1", sizeof(int));
	value2_key = tld_create_key("value2", sizeof(struct test_tld_struct));
	if (tld_key_is_err(value1_key) || tld_key_is_err(value2_key)) {
		fprintf(stderr, "tld_create_key: %d %d\n", tld_key_err_or_zero(value1_key),
			tld_key_err_or_zero(value2_key));
		return 3;
	}
	threads = calloc(n, sizeof(*threads));
	tids = calloc(n, sizeof(*tids));
	for (i = 0; i < n; i++)
		pthread_create(&threads[i], NULL, thread_main, (void *)i);

	pthread_mutex_lock(&lock);
	while (ready < n)
		pthread_cond_wait(&changed, &lock);
	pthread_mutex_unlock(&lock);
	printf("TIDS");
	for (i = 0; i < n; i++)
		printf(" %d", tids[i]);
	printf("\n");
	fflush(stdout);

	while (fgets(buf, sizeof(buf), stdin))
		;
	pthread_mutex_lock(&lock);
	quit = 1;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	return 0;
}
