// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * parts_host.c - a C host with hints of its own (through libtld) that loads two Rust plugins
 * with dlopen(RTLD_LOCAL), each with hints of its own: one runtime for the three parts. Run by
 * tests/tests/libtld_plugins.rs, which passes the map and the tld_c_read program
 * (TLD_TEST_MAP_FD, TLD_TEST_PROG_FD), and as arguments the paths of plugin A, plugin B and a
 * copy of plugin A's file. Exits 0 if every check held.
 */
#include "tld_test.h"

#include <dlfcn.h>
#include <pthread.h>
#include <tld.h>

#include "plugin.h"

TLD_DEFINE_KEY(host_value_key, "host_value", sizeof(__u64));
TLD_DEFINE_HINT(int, host_typed, "host_typed");

#define THREADS 32

struct plugin_a {
	void *handle;
	plugin_a_set_fn set;
	plugin_a_get_fn get;
	plugin_info_fn info;
};

struct plugin_b {
	void *handle;
	plugin_b_set_fn set;
	plugin_b_get_fn get;
	plugin_info_fn info;
};

static int prog_fd;
static struct plugin_a A, A2;
static struct plugin_b B;
static int b_loaded;
static pthread_barrier_t set_done, checked;

static void *sym(void *handle, const char *name)
{
	void *p = dlsym(handle, name);

	if (!p) {
		fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
		exit(2);
	}
	return p;
}

static void *load(const char *path)
{
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!handle) {
		fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
		exit(2);
	}
	return handle;
}

static void load_a(struct plugin_a *a, const char *path)
{
	a->handle = load(path);
	a->set = (plugin_a_set_fn)sym(a->handle, "plugin_a_set");
	a->get = (plugin_a_get_fn)sym(a->handle, "plugin_a_get");
	a->info = (plugin_info_fn)sym(a->handle, "plugin_a_info");
}

static void load_b(struct plugin_b *b, const char *path)
{
	b->handle = load(path);
	b->set = (plugin_b_set_fn)sym(b->handle, "plugin_b_set");
	b->get = (plugin_b_get_fn)sym(b->handle, "plugin_b_get");
	b->info = (plugin_info_fn)sym(b->handle, "plugin_b_info");
	b_loaded = 1;
}

static const __u64 ALL_KEYS = TLD_C_HOST_VALUE | TLD_C_HOST_TYPED | TLD_C_PLUGIN_A_COUNT |
			      TLD_C_PLUGIN_A_FLAG | TLD_C_PLUGIN_B_LEVEL | TLD_C_PLUGIN_B_BUDGET;

/* A worker: sets every part's hints, then checks that BPF reads all of them from the thread's
 * one element, and that every part reads its own back. With @barriers, waits for the main
 * thread's checks of every part's status while all workers are alive. */
static void *worker(void *arg)
{
	long i = (long)arg & 0xffff;
	int barriers = (long)arg >> 16;
	pid_t tid = test_gettid();
	__u64 *value = tld_get_data(-1, host_value_key);
	struct tld_c_read r;
	__u32 flag, b0, b1;
	__u64 count;
	__s32 level;

	if (!CHECK(value, "thread %ld has no page", i))
		return NULL;
	*value = 1000 + i;
	host_typed_set(-(int)i);
	A.set(2000 + i, (__u32)i);
	if (b_loaded)
		B.set(-(3000 + (int)i), (__u32)i, (__u32)(2 * i));

	r = bpf_read_self(prog_fd);
	CHECK(r.init_ret == 0, "thread %ld: not registered (%lld)", i, (long long)r.init_ret);
	CHECK(r.pid == tid, "thread %ld: BPF ran for %d", i, r.pid);
	CHECK((r.found & ALL_KEYS) == ALL_KEYS, "thread %ld: keys found %#llx", i,
	      (unsigned long long)r.found);
	CHECK(r.host_value == (__u64)(1000 + i), "thread %ld: host_value %llu", i,
	      (unsigned long long)r.host_value);
	CHECK(r.host_typed == -i, "thread %ld: host_typed %lld", i, (long long)r.host_typed);
	CHECK(r.plugin_a_count == (__u64)(2000 + i) && r.plugin_a_flag == (__u64)i,
	      "thread %ld: plugin A %llu %llu", i, (unsigned long long)r.plugin_a_count,
	      (unsigned long long)r.plugin_a_flag);
	if (b_loaded) {
		CHECK(r.plugin_b_level == -(3000 + i), "thread %ld: plugin_b_level %lld", i,
		      (long long)r.plugin_b_level);
		CHECK(r.plugin_b_budget[0] == i && r.plugin_b_budget[1] == 2 * i &&
			      (r.plugin_b_seq & 7) == 1,
		      "thread %ld: plugin_b_budget %u %u (seq %llu)", i, r.plugin_b_budget[0],
		      r.plugin_b_budget[1], (unsigned long long)r.plugin_b_seq);
		B.get(&level, &b0, &b1);
		CHECK(level == -(3000 + i) && b0 == i && b1 == 2 * i, "thread %ld: B reads %d",
		      i, level);
	} else {
		/* B was unloaded: its keys stay, and a new thread's values are its initializers. */
		CHECK(r.plugin_b_level == -3 && r.plugin_b_budget[0] == 5 &&
			      r.plugin_b_budget[1] == 6,
		      "thread %ld: B's orphaned keys read %lld %u %u", i, (long long)r.plugin_b_level,
		      r.plugin_b_budget[0], r.plugin_b_budget[1]);
	}
	A.get(&count, &flag);
	CHECK(count == (__u64)(2000 + i) && flag == i, "thread %ld: A reads %llu %u", i,
	      (unsigned long long)count, flag);
	CHECK(host_typed_get() == -i, "thread %ld: host_typed reads %d", i, host_typed_get());

	if (barriers) {
		pthread_barrier_wait(&set_done);
		pthread_barrier_wait(&checked);
	}
	return NULL;
}

static pthread_t threads[THREADS];

static void join_workers(int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
}

/* Starts @n workers; without @barriers, waits for them to end. */
static void run_workers(int n, long first, int barriers)
{
	int i;

	for (i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, worker,
				   (void *)((first + i) | ((long)barriers << 16)))) {
			fprintf(stderr, "pthread_create failed\n");
			exit(2);
		}
	if (barriers) {
		pthread_barrier_wait(&set_done);
		return;
	}
	join_workers(n);
}

/* Every part reports the same runtime of @parts parts, connected, with @live threads. */
static void check_one_runtime(unsigned int parts, unsigned int live)
{
	struct plugin_info ia, ib;
	struct tld_status st;

	CHECK(tld_get_status(&st, sizeof(st)) == 0, "tld_get_status");
	CHECK(st.sharing == TLD_SHARING_SERVING, "libtld: sharing %d", st.sharing);
	CHECK(st.connection == TLD_CONNECTED, "libtld: not connected: %s", st.reason);
	CHECK(st.parts == parts, "libtld: %u parts, %u expected", st.parts, parts);
	CHECK(st.live_threads == live && st.registered_threads == live,
	      "libtld: %u live, %u registered threads; %u expected", st.live_threads,
	      st.registered_threads, live);
	A.info(&ia);
	CHECK(ia.sharing == 1 && ia.connected && ia.parts == parts && ia.hints == 2,
	      "plugin A: sharing %d connected %d parts %u hints %u (%s)", ia.sharing, ia.connected,
	      ia.parts, ia.hints, ia.problem);
	CHECK(ia.runtime_id == st.runtime_id && ia.live_threads == live,
	      "plugin A: runtime %#llx with %u threads", (unsigned long long)ia.runtime_id,
	      ia.live_threads);
	if (b_loaded) {
		B.info(&ib);
		CHECK(ib.sharing == 1 && ib.connected && ib.parts == parts,
		      "plugin B: sharing %d connected %d parts %u (%s)", ib.sharing, ib.connected,
		      ib.parts, ib.problem);
		CHECK(ib.runtime_id == st.runtime_id, "plugin B: runtime %#llx",
		      (unsigned long long)ib.runtime_id);
	}
	printf("one runtime %#llx: %u parts, %u threads registered, %u keys\n",
	       (unsigned long long)st.runtime_id, st.parts, st.registered_threads,
	       st.published_keys);
}

int main(int argc, char **argv)
{
	struct plugin_info info;
	struct tld_c_read r;
	__u64 *value;
	void *still;

	if (argc != 4) {
		fprintf(stderr, "usage: %s PLUGIN_A PLUGIN_B COPY_OF_PLUGIN_A\n", argv[0]);
		return 2;
	}
	prog_fd = env_fd("TLD_TEST_PROG_FD");
	CHECK(!tld_key_is_err(host_value_key), "TLD_DEFINE_KEY: %d", host_value_key.off);
	CHECK(tld_connect_fd(env_fd("TLD_TEST_MAP_FD")) == 0, "tld_connect_fd");

	/* The main thread has a page before the plugins load. */
	value = tld_get_data(-1, host_value_key);
	if (!CHECK(value, "the main thread has no page"))
		return 1;
	*value = 1;

	load_a(&A, argv[1]);
	load_b(&B, argv[2]);
	/* Each plugin's copy of the runtime joins at its first use. */
	A.info(&info);
	B.info(&info);
	/* The main thread's page got the plugins' initial values as they joined. */
	r = bpf_read_self(prog_fd);
	CHECK((r.found & ALL_KEYS) == ALL_KEYS && r.host_value == 1 && r.plugin_a_count == 7 &&
		      r.plugin_a_flag == 1 && r.plugin_b_level == -3 &&
		      r.plugin_b_budget[0] == 5 && r.plugin_b_budget[1] == 6,
	      "main thread: found %#llx, %llu %llu %llu %lld %u %u", (unsigned long long)r.found,
	      (unsigned long long)r.host_value, (unsigned long long)r.plugin_a_count,
	      (unsigned long long)r.plugin_a_flag, (long long)r.plugin_b_level,
	      r.plugin_b_budget[0], r.plugin_b_budget[1]);
	B.set(-77, 8, 9);

	/* 32 threads, every part's hints, one element each. */
	pthread_barrier_init(&set_done, NULL, THREADS + 1);
	pthread_barrier_init(&checked, NULL, THREADS + 1);
	run_workers(THREADS, 0, 1);
	check_one_runtime(3, THREADS + 1);
	pthread_barrier_wait(&checked);
	/* A thread's page goes back as it ends. */
	join_workers(THREADS);
	check_one_runtime(3, 1);

	/* dlclose of plugin B: it leaves; the others keep working. */
	CHECK(dlclose(B.handle) == 0, "dlclose: %s", dlerror());
	still = dlopen(argv[2], RTLD_NOLOAD | RTLD_LAZY);
	CHECK(!still, "plugin B stayed loaded after dlclose");
	b_loaded = 0;
	check_one_runtime(2, 1);
	run_workers(8, 100, 0);
	r = bpf_read_self(prog_fd);
	CHECK(r.plugin_b_level == -77 && r.plugin_b_budget[0] == 8,
	      "main thread: B's orphaned keys keep their values: %lld %u",
	      (long long)r.plugin_b_level, r.plugin_b_budget[0]);

	/* A second copy of plugin A: its keys are A's, a duplicate. It joins, but its hints stay
	 * thread-local, and A's values are untouched. */
	load_a(&A2, argv[3]);
	A2.info(&info);
	CHECK(info.sharing == 1 && !info.connected && strstr(info.problem, "duplicate") &&
		      strstr(info.problem, "plugin_a_"),
	      "copy of A: sharing %d connected %d: %s", info.sharing, info.connected, info.problem);
	A2.set(555, 5);
	{
		__u64 count;
		__u32 flag;

		A2.get(&count, &flag);
		CHECK(count == 555 && flag == 5, "copy of A reads %llu %u", (unsigned long long)count,
		      flag);
	}
	r = bpf_read_self(prog_fd);
	CHECK(r.plugin_a_count == 7, "the copy of A wrote over A's key: %llu",
	      (unsigned long long)r.plugin_a_count);

	/* Plugin B again: it takes its keys back, every thread's values back to its initializers. */
	load_b(&B, argv[2]);
	B.info(&info);
	CHECK(info.sharing == 1 && info.connected && info.parts == 4,
	      "B again: sharing %d connected %d parts %u: %s", info.sharing, info.connected,
	      info.parts, info.problem);
	r = bpf_read_self(prog_fd);
	CHECK(r.plugin_b_level == -3 && r.plugin_b_budget[0] == 5 && r.plugin_b_budget[1] == 6,
	      "B again: the main thread reads %lld %u %u", (long long)r.plugin_b_level,
	      r.plugin_b_budget[0], r.plugin_b_budget[1]);
	run_workers(8, 200, 0);

	printf("%d failures\n", atomic_load(&test_failures));
	return atomic_load(&test_failures) ? 1 : 0;
}
