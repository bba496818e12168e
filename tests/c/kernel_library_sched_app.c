// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * kernel_library_sched_app.c - an application that sets scx_tld's hints
 * through the Linux kernel's own task local data C library
 * (prog_tests/task_local_data.h of the 7.x BPF selftests) instead of
 * tld-runtime. The VM suite runs it under scx_tld: the scheduler, built on
 * tld's header, must read what that library writes. It is built at test time
 * against the fetched library, which is never copied into this repository.
 *
 *   kernel_library_sched_app PIN THREADS
 *
 * Opens the tld_data_map pinned at PIN and starts THREADS threads. Thread i
 * sets the keys scx_tld reads, by name:
 *   priority (int)                      = i % 32 - 16
 *   latency  (struct { u32 budget_us; u32 class; }) = { 1000 + 37 * (i % 32), i % 3 }
 * then sleeps 1 ms at a time (each wake-up is an enqueue, where the scheduler
 * reads the hints) until the program ends. The program prints
 * "TIDS t1 t2 ..." once every thread has set its hints, and ends when its
 * standard input closes.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
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

/* tld_sched_hints::LatencyHint, as scx_tld reads it. */
struct latency_hint {
	__u32 budget_us;
	__u32 class;
};

static tld_key_t priority_key, latency_key;
static int map_fd;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int ready, quit;
static pid_t *tids;

static void *thread_main(void *arg)
{
	long i = (long)arg;
	struct latency_hint *lat;
	struct timespec ms = { 0, 1000 * 1000 };
	int *prio;

	prio = tld_get_data(map_fd, priority_key);
	lat = tld_get_data(map_fd, latency_key);
	if (!prio || !lat) {
		fprintf(stderr, "thread %ld: tld_get_data failed\n", i);
		exit(3);
	}
	*prio = (int)(i % 32) - 16;
	lat->budget_us = 1000 + 37 * (__u32)(i % 32);
	lat->class = (__u32)(i % 3);

	pthread_mutex_lock(&lock);
	tids[i] = sys_gettid();
	ready++;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);

	while (!__atomic_load_n(&quit, __ATOMIC_RELAXED))
		nanosleep(&ms, NULL);
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
	if (n <= 0 || n > 1024) {
		fprintf(stderr, "THREADS: 1 to 1024\n");
		return 2;
	}
	priority_key = tld_create_key("priority", sizeof(int));
	latency_key = tld_create_key("latency", sizeof(struct latency_hint));
	if (tld_key_is_err(priority_key) || tld_key_is_err(latency_key)) {
		fprintf(stderr, "tld_create_key: %d %d\n", tld_key_err_or_zero(priority_key),
			tld_key_err_or_zero(latency_key));
		return 3;
	}
	threads = calloc(n, sizeof(*threads));
	tids = calloc(n, sizeof(*tids));
	if (!threads || !tids)
		return 4;
	for (i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, thread_main, (void *)i))
			return 4;

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
	__atomic_store_n(&quit, 1, __ATOMIC_RELAXED);
	for (i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	return 0;
}
