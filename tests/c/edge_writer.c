// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * edge_writer.c - a user-space writer that registers the calling thread in a
 * tld_data_map with a value buffer of its own size, placed where it ends at
 * the edge of a mapping (the next page is not mapped), as a library's stack
 * or heap buffer may. For tests/tests/kernel_library.rs: given the map value
 * meant for it, a writer registers without EFAULT and nothing past its buffer
 * reaches BPF; given a longer one, the kernel reads past the buffer.
 *
 *   edge_writer PIN SIZE edge|inner
 *
 * SIZE is what the writer sends: 16 (a 6.18 writer: data, meta) or 24 (a 7.x
 * writer: data, meta, u16 start, zero padding). With "edge" the buffer's last
 * byte is the last byte of a mapping; with "inner" it is followed by 8 bytes
 * of 0xa5, so that a kernel copy past the buffer shows. The thread's data
 * page holds start = 16 in its first u64 (6.18 readers) and the value holds
 * 16 too (7.x readers); its metadata page publishes one key, "edge" (u32), at
 * 16, with the value 0x0dd1e.
 *
 * Prints "TID <tid> ERRNO <e>" (0 if the update succeeded), then waits until
 * standard input closes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

int main(int argc, char **argv)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *pages, *buf, *mapping;
	int fd, pidfd, err = 0;
	size_t size;
	char line[64];
	pid_t tid;

	if (argc != 4) {
		fprintf(stderr, "usage: %s PIN 16|24 edge|inner\n", argv[0]);
		return 2;
	}
	size = (size_t)atoi(argv[2]);
	if (size != 16 && size != 24) {
		fprintf(stderr, "SIZE must be 16 or 24\n");
		return 2;
	}
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "bpf_obj_get(%s): %d\n", argv[1], fd);
		return 2;
	}

	/* The thread's data page and the process's metadata page. */
	pages = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* A page for the buffer, then a hole: the next page is unmapped. */
	mapping = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED || mapping == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	munmap(mapping + page, page);
	memset(mapping, 0xa5, page);

	*(uint64_t *)pages = 16;			/* start, for 6.18 readers */
	*(uint32_t *)(pages + 16) = 0x0dd1e;		/* the value of "edge" */
	*(uint16_t *)(pages + page) = 1;		/* cnt */
	*(uint16_t *)(pages + page + 2) = (uint16_t)(page - 16);
	memcpy(pages + page + 4, "edge", 5);		/* entry 0's name */
	*(uint16_t *)(pages + page + 4 + 62) = 4;	/* and size */

	if (!strcmp(argv[3], "edge"))
		buf = mapping + page - size;
	else
		buf = mapping + page - size - 8;
	memset(buf, 0, size);
	*(uint64_t *)buf = (uint64_t)(uintptr_t)pages;
	*(uint64_t *)(buf + 8) = (uint64_t)(uintptr_t)(pages + page);
	if (size == 24)
		*(uint16_t *)(buf + 16) = 16;		/* start, for 7.x readers */

	tid = (pid_t)syscall(SYS_gettid);
	pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
	if (pidfd < 0) {
		perror("pidfd_open");
		return 2;
	}
	if (bpf_map_update_elem(fd, &pidfd, buf, BPF_ANY))
		err = errno;
	printf("TID %d ERRNO %d\n", tid, err);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
