/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The calling thread's page, in a thread-local that C code reads directly: the fast path of
 * tld_get_data() (tld.h) is this load and an add. Stable Rust cannot define a thread-local
 * that C can name, hence this file. libtld's Rust code sets it when the thread gets its page
 * and clears it (through a page release hook) before the page goes away.
 */
#include "tld.h"

__thread char *__tld_thread_page;

__attribute__((visibility("hidden"))) void tld__set_thread_page(char *page)
{
	__tld_thread_page = page;
}
