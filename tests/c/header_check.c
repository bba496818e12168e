// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * header_check.c - tld.h under a strict C compiler (-std=c11 -pedantic, warnings as errors),
 * and what a program sees without any BPF map: keys, values per thread, errors, typed hints,
 * status. Built by tests/tests/libtld_header.rs against libtld.so and libtld.a. Exits 0 if
 * every check held.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep() under -std=c11 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <tld.h>

struct window {
	__u64 start_ns;
	__u32 weight;
	__u32 class_id;
};

TLD_DEFINE_KEY(counter_key, "header_counter", sizeof(__u64));
TLD_DEFINE_HINT(int, priority, "header_priority");
TLD_DEFINE_HINT(struct window, window, "header_window");

static int failures;

#define EXPECT(cond)								\
	do {									\
		if (!(cond)) {							\
			failures++;						\
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}								\
	} while (0)

static void *worker(void *arg)
{
	__u64 *counter = (__u64 *)tld_get_data(-1, counter_key);
	struct window w = window_get();

	/* Every thread starts at zero. */
	EXPECT(counter && *counter == 0);
	EXPECT(priority_get() == 0 && w.weight == 0);
	if (counter)
		*counter = (__u64)(long)arg;
	priority_set((int)(long)arg);
	return (void *)(long)(counter ? *counter + (__u64)priority_get() : 0);
}

int main(void)
{
	struct window w = { .start_ns = 1, .weight = 100, .class_id = 2 };
	struct tld_status st;
	__u64 *counter;
	pthread_t t;
	void *ret;
	tld_key_t key;
	char name[64];
	int i, created = 0;

	EXPECT(!tld_key_is_err(counter_key) && tld_key_err_or_zero(counter_key) == 0);
	EXPECT(!tld_key_is_err(priority_key) && !tld_key_is_err(window_key));
	EXPECT(counter_key.off > 0 && counter_key.off % 8 == 0);

	counter = (__u64 *)tld_get_data(-1, counter_key);
	EXPECT(counter != NULL);
	*counter = 41;
	priority_set(-3);
	window_set(w);
	EXPECT(pthread_create(&t, NULL, worker, (void *)7L) == 0);
	EXPECT(pthread_join(t, &ret) == 0);
	EXPECT((long)ret == 14);
	/* The other thread's values were its own. */
	EXPECT(*counter == 41 && priority_get() == -3);
	EXPECT(window_get().weight == 100 && window_get().class_id == 2);

	/* Errors, as the selftests library gives them. */
	EXPECT(tld_key_err_or_zero(tld_create_key("header_counter", 8)) == -EEXIST);
	EXPECT(tld_key_err_or_zero(tld_create_key("not a c identifier", 8)) == -EINVAL);
	EXPECT(tld_key_err_or_zero(tld_create_key("header_zero", 0)) == -EINVAL);
	EXPECT(tld_key_err_or_zero(tld_create_key("header_huge", 70000)) == -E2BIG);
	EXPECT(tld_key_err_or_zero(tld_create_key("header_big", (size_t)TLD_PAGE_SIZE)) == -E2BIG);
	EXPECT(tld_find_key("header_priority").off == priority_key.off);
	EXPECT(tld_key_err_or_zero(tld_find_key("header_nothing")) == -ENOENT);
	EXPECT(tld_get_data(-1, tld_create_key("header_counter", 8)) == NULL);
	key.off = 0;
	EXPECT(tld_key_is_err(key) && tld_key_err_or_zero(key) == -EINVAL);
	EXPECT(tld_get_data(-1, key) == NULL);
	for (i = 0; i < (int)TLD_MAX_DATA_CNT; i++) {
		snprintf(name, sizeof(name), "header_fill_%d", i);
		key = tld_create_key(name, 8);
		if (tld_key_is_err(key)) {
			EXPECT(tld_key_err_or_zero(key) == -ENOSPC);
			break;
		}
		created++;
	}
	/* 3 keys above, then the rest of the metadata page. */
	EXPECT(created == (int)TLD_MAX_DATA_CNT - 3);

	/* After tld_free() the thread gets a new page, from zero. */
	tld_free();
	counter = (__u64 *)tld_get_data(-1, counter_key);
	EXPECT(counter && *counter == 0 && priority_get() == 0);

	/* No map: the values work all the same, and the status says why. */
	EXPECT(tld_get_status(&st, sizeof(st)) == 0);
	EXPECT(st.connection == TLD_DETACHED && st.error < 0 && strlen(st.reason) > 0);
	EXPECT(st.sharing == TLD_SHARING_SERVING && st.parts == 1);
	EXPECT(st.published_keys == TLD_MAX_DATA_CNT && st.live_threads == 1);
	EXPECT(tld_thread_init() == st.error);
	EXPECT(tld_connect_fd(-1) == -EBADF && tld_connect_pinned("/nonexistent/pin") < 0);
	EXPECT(tld_get_status(NULL, 0) == -EINVAL);

	/*
	 * The fields added at the end sit where the library writes them. A running watcher
	 * ends at its next wake (the watch interval, 1 s by default): wait up to 10 s.
	 */
	tld_set_watcher(0);
	for (int i = 0; i < 500; i++) {
		memset(&st, 0xff, sizeof(st));
		EXPECT(tld_get_status(&st, sizeof(st)) == 0);
		if (st.watcher == 0)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
	}
	EXPECT(st.watcher == 0 && st.registration_failures == 0 &&
	       st.last_registration_error[0] == 0);
	tld_set_watcher(1);
	EXPECT(sizeof(struct tld_data_u) == 8 && TLD_ROUND_UP(13, 8) == 16 && TLD_NAME_LEN == 62);

	printf("%s: %d failures (%s)\n", __FILE__, failures, st.reason);
	return failures ? 1 : 0;
}
