// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * lifecycle.c - a C host's life with libtld and a Rust plugin (plugin A), as the Rust tests
 * check a Rust program's (tests/tests/fork.rs, exec.rs, restart.rs). Run by
 * tests/tests/libtld_lifecycle.rs as `lifecycle MODE [PLUGIN_A]`:
 *
 *  fork         a child forked from a busy process has its own registered page, with a copy
 *               of the values, for libtld's keys and the plugin's; the parent is unaffected.
 *  exec-before  sets a hint, registers through auto-connect (TLD_MAP_PATH), prints "ready TID",
 *               waits for a line on stdin and execs itself as exec-after;
 *  exec-after   starts from the initial value, sets another, prints "ready TID", waits.
 *  restart      tld_connect_fd() to a second map (a restarted scheduler) while four threads
 *               run: each is registered in it with its values, without touching a hint, and
 *               its element in the first map is gone.
 *
 * Maps and programs come as file descriptors: TLD_TEST_MAP_FD, TLD_TEST_PROG_FD (tld_c_read),
 * and for restart TLD_TEST_MAP2_FD, TLD_TEST_PROG2_FD and TLD_TEST_MAP2_ID. Exits 0 if every
 * check held.
 */
#include "tld_test.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <tld.h>

#include "plugin.h"

TLD_DEFINE_KEY(host_value_key, "host_value", sizeof(__u64));

static plugin_a_set_fn a_set;
static plugin_a_get_fn a_get;
static int prog_fd;

static void load_plugin(const char *path)
{
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!handle) {
		fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
		exit(2);
	}
	a_set = (plugin_a_set_fn)dlsym(handle, "plugin_a_set");
	a_get = (plugin_a_get_fn)dlsym(handle, "plugin_a_get");
	if (!a_set || !a_get) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		exit(2);
	}
}

static __u64 *host_value(void)
{
	__u64 *p = tld_get_data(-1, host_value_key);

	if (!p) {
		fprintf(stderr, "thread %d has no page\n", test_gettid());
		exit(2);
	}
	return p;
}

/* BPF reads @host and @count for the calling thread, which it finds registered. */
static void expect_self(int prog, __u64 host, __u64 count, const char *when)
{
	struct tld_c_read r = bpf_read_self(prog);

	CHECK(r.init_ret == 0 && r.pid == test_gettid(), "%s: thread %d: init %lld, read %d", when,
	      test_gettid(), (long long)r.init_ret, r.pid);
	CHECK(r.host_value == host && r.plugin_a_count == count,
	      "%s: host_value %llu plugin_a_count %llu; expected %llu %llu", when,
	      (unsigned long long)r.host_value, (unsigned long long)r.plugin_a_count,
	      (unsigned long long)host, (unsigned long long)count);
}

/* fork: threads that keep setting hints while the main thread forks. */
static atomic_int stop;

static void *busy(void *arg)
{
	long i = (long)arg;
	__u64 n = 0;

	while (!atomic_load(&stop)) {
		*host_value() = 5000 + i;
		a_set(6000 + n++, (__u32)i);
	}
	return NULL;
}

static void *child_thread(void *arg)
{
	(void)arg;
	*host_value() = 30;
	a_set(3030, 3);
	expect_self(prog_fd, 30, 3030, "a thread started in the child");
	return NULL;
}

static int child(void)
{
	struct tld_status st;
	pthread_t t;

	/* Registered with its own page, which starts as a copy of the parent's values. */
	expect_self(prog_fd, 10, 1010, "the child");
	*host_value() = 20;
	a_set(2020, 2);
	expect_self(prog_fd, 20, 2020, "the child, after it set its own");
	pthread_create(&t, NULL, child_thread, NULL);
	pthread_join(t, NULL);
	tld_get_status(&st, sizeof(st));
	CHECK(st.live_threads == 1 && st.parts == 2, "the child: %u live threads, %u parts",
	      st.live_threads, st.parts);
	return atomic_load(&test_failures) ? 1 : 0;
}

static int run_fork(void)
{
	pthread_t threads[4];
	int status = 0;
	pid_t pid;

	CHECK(tld_connect_fd(env_fd("TLD_TEST_MAP_FD")) == 0, "tld_connect_fd");
	*host_value() = 10;
	a_set(1010, 1);
	expect_self(prog_fd, 10, 1010, "the parent");
	for (long i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, busy, (void *)i);
	usleep(20000);
	for (int round = 0; round < 20; round++) {
		pid = fork();
		if (pid == 0)
			_exit(child());
		CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork or waitpid");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "round %d: the child failed (status %#x)", round, status);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	expect_self(prog_fd, 10, 1010, "the parent after the forks");
	return atomic_load(&test_failures) ? 1 : 0;
}

static void ready_and_wait(void)
{
	char line[16];

	printf("ready %d\n", test_gettid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		exit(3);
}

static int run_exec_before(const char *self)
{
	*host_value() = 111;
	CHECK(tld_thread_init() == 0, "registered through TLD_MAP_PATH");
	ready_and_wait();
	execl(self, self, "exec-after", (char *)NULL);
	perror("execl");
	return 1;
}

static int run_exec_after(void)
{
	CHECK(*host_value() == 0, "the exec'd program starts from the initial value: %llu",
	      (unsigned long long)*host_value());
	*host_value() = 222;
	CHECK(tld_thread_init() == 0, "registered again after exec");
	ready_and_wait();
	return atomic_load(&test_failures) ? 1 : 0;
}

/* restart */
static pthread_barrier_t set_done, restarted;
static int prog2_fd;

static void *restart_worker(void *arg)
{
	long i = (long)arg;
	struct tld_c_read r;

	*host_value() = 700 + i;
	a_set(800 + i, (__u32)i);
	expect_self(prog_fd, 700 + i, 800 + i, "before the restart");
	pthread_barrier_wait(&set_done);
	pthread_barrier_wait(&restarted);
	/* Registered in the new map by the connect, without touching a hint. */
	expect_self(prog2_fd, 700 + i, 800 + i, "after the restart");
	r = bpf_read_self(prog_fd);
	CHECK(r.init_ret != 0, "thread %ld still has an element in the first map", i);
	return NULL;
}

static int run_restart(void)
{
	pthread_t threads[4];
	struct tld_status st;
	int i;

	prog2_fd = env_fd("TLD_TEST_PROG2_FD");
	CHECK(tld_connect_fd(env_fd("TLD_TEST_MAP_FD")) == 0, "tld_connect_fd, first map");
	pthread_barrier_init(&set_done, NULL, 5);
	pthread_barrier_init(&restarted, NULL, 5);
	for (i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, restart_worker, (void *)(long)i);
	pthread_barrier_wait(&set_done);
	CHECK(tld_connect_fd(env_fd("TLD_TEST_MAP2_FD")) == 0, "tld_connect_fd, second map");
	tld_get_status(&st, sizeof(st));
	CHECK(st.connection == TLD_CONNECTED && st.map_id == (__u32)env_fd("TLD_TEST_MAP2_ID") &&
		      st.registered_threads == 4,
	      "after the restart: connection %d to map %u, %u threads registered", st.connection,
	      st.map_id, st.registered_threads);
	pthread_barrier_wait(&restarted);
	for (i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	return atomic_load(&test_failures) ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (!strcmp(mode, "exec-before"))
		return run_exec_before(argv[0]);
	if (!strcmp(mode, "exec-after"))
		return run_exec_after();
	if (argc < 3) {
		fprintf(stderr, "usage: %s fork|restart PLUGIN_A\n", argv[0]);
		return 2;
	}
	prog_fd = env_fd("TLD_TEST_PROG_FD");
	load_plugin(argv[2]);
	if (!strcmp(mode, "fork"))
		return run_fork();
	if (!strcmp(mode, "restart"))
		return run_restart();
	fprintf(stderr, "unknown mode %s\n", mode);
	return 2;
}
