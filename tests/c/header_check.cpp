// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * header_check.cpp - tld.h under a strict C++ compiler (-std=c++17 -pedantic, warnings as
 * errors): the C interface and tld::hint<T>, without any BPF map. Built by
 * tests/tests/libtld_header.rs. Exits 0 if every check held.
 */
#include <tld.h>

#include <cstdio>
#include <cstdint>
#include <thread>

namespace {

struct Budget {
	std::uint64_t slice_ns;
	std::uint32_t weight;
	std::uint32_t flags;
};

TLD_DEFINE_KEY(cxx_counter_key, "cxx_counter", sizeof(long));
TLD_DEFINE_HINT(short, cxx_level, "cxx_level");

int failures;

void expect(bool ok, const char *what)
{
	if (!ok) {
		failures++;
		std::fprintf(stderr, "FAIL: %s\n", what);
	}
}

} // namespace

int main()
{
	static const tld::hint<Budget> budget("cxx_budget");
	static const tld::hint<double> ratio("cxx_ratio");
	static const tld::hint<int> again("cxx_budget");

	expect(budget.ok() && ratio.ok(), "hints are created");
	expect(!again.ok() && again.error() == -EEXIST, "a second key of one name is refused");
	budget.set(Budget{250000, 100, 1});
	ratio.set(0.5);
	cxx_level_set(7);
	long *counter = static_cast<long *>(tld_get_data(-1, cxx_counter_key));
	expect(counter != nullptr, "the thread has a page");
	*counter = 99;
	std::thread other([] {
		expect(budget.get().slice_ns == 0 && ratio.get() == 0.0, "another thread starts at 0");
		budget.set(Budget{1, 2, 3});
	});
	other.join();
	expect(budget.get().slice_ns == 250000 && budget.get().weight == 100, "values per thread");
	expect(ratio.get() == 0.5 && cxx_level_get() == 7 && *counter == 99, "values stay");
	expect(again.ptr() == nullptr && again.get() == 0, "a key never created has no value");

	tld_status st{};
	expect(tld_get_status(&st, sizeof(st)) == 0 && st.published_keys == 4, "status");
	std::printf("header_check.cpp: %d failures\n", failures);
	return failures ? 1 : 0;
}
