/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Stands for the skeleton of the kernel selftest's BPF object: the Rust test loads the
 * kernel's own program (progs/test_task_local_data.c, built unmodified) and passes its map,
 * its program and its .bss map as file descriptors
 * (TLD_KSELFTEST_MAP_FD, TLD_KSELFTEST_PROG_FD, TLD_KSELFTEST_BSS_FD); the .bss is mapped, so
 * that what the program stores in its globals shows here at once, as in a libbpf skeleton.
 * struct test_tld_struct is the selftest's own, defined before it includes this file.
 */
#ifndef TLD_KSELFTEST_SKEL_H
#define TLD_KSELFTEST_SKEL_H

#include <sys/mman.h>

struct test_task_local_data {
	struct {
		struct bpf_map *tld_data_map;
	} maps;
	struct {
		struct bpf_program *task_main;
	} progs;
	/* The program's globals, as the kernel's program lays them out in .bss. */
	struct test_task_local_data__bss {
		int test_value0;
		int test_value1;
		struct test_tld_struct test_value2;
	} *bss;
	struct bpf_map map;
	struct bpf_program prog;
};

static inline int kselftest_env_fd(const char *name)
{
	const char *v = getenv(name);

	return v ? atoi(v) : -1;
}

static inline struct test_task_local_data *test_task_local_data__open_and_load(void)
{
	struct test_task_local_data *skel = calloc(1, sizeof(*skel));
	int bss = kselftest_env_fd("TLD_KSELFTEST_BSS_FD");
	void *mem;

	if (!skel)
		return NULL;
	skel->map.fd = kselftest_env_fd("TLD_KSELFTEST_MAP_FD");
	skel->prog.fd = kselftest_env_fd("TLD_KSELFTEST_PROG_FD");
	skel->maps.tld_data_map = &skel->map;
	skel->progs.task_main = &skel->prog;
	mem = mmap(NULL, (size_t)getpagesize(), PROT_READ, MAP_SHARED, bss, 0);
	if (skel->map.fd < 0 || skel->prog.fd < 0 || mem == MAP_FAILED) {
		fprintf(stderr, "the test's BPF object was not passed (fds %d %d %d)\n",
			skel->map.fd, skel->prog.fd, bss);
		free(skel);
		return NULL;
	}
	skel->bss = (struct test_task_local_data__bss *)mem;
	return skel;
}

static inline void test_task_local_data__destroy(struct test_task_local_data *skel)
{
	if (!skel)
		return;
	munmap(skel->bss, (size_t)getpagesize());
	free(skel);
}

#endif
