// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * Runs the kernel's task local data selftest, built against libtld, for the one subtest named
 * by TLD_KSELFTEST_SUBTEST. Exits 0 if it ran and every check held.
 */
#include "test_progs.h"

atomic_int kselftest_failures;
int kselftest_subtests_run;

void test_task_local_data(void);

int main(void)
{
	test_task_local_data();
	printf("%d subtests run, %d failures\n", kselftest_subtests_run,
	       atomic_load(&kselftest_failures));
	return kselftest_subtests_run == 1 && atomic_load(&kselftest_failures) == 0 ? 0 : 1;
}
