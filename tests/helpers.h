/* SPDX-License-Identifier: MIT */
/* Shared fixtures for the cmocka unit tests (STYLE.md §23). */
#ifndef HM_TESTS_HELPERS_H
#define HM_TESTS_HELPERS_H

/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/*
 * True when the comma-separated list in $HM_REQUIRE (e.g. "kvm,uffd,bpf")
 * names @facility: a test that would skip() for its absence must fail().
 */
bool hm_test_require(const char *facility);
/* True when /dev/kvm opens read-write. */
bool hm_have_kvm(void);

/*
 * Skip the current test because @facility is missing, printing @why; fail
 * instead when HM_REQUIRE names it.
 */
#define hm_skip_unless(facility, have, why)                                                        \
	do {                                                                                       \
		if (!(have)) {                                                                     \
			print_message("%s: %s\n", (facility), (why));                              \
			if (hm_test_require(facility))                                             \
				fail_msg("HM_REQUIRE names '%s' but it is missing", (facility));   \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

#endif
