// SPDX-License-Identifier: MIT
/* Unit tests for the shared test fixtures themselves (tests/helpers.h). */
#include "tests/helpers.h"

#include <stdlib.h>
#include <string.h>

static int save_env(void **state)
{
	const char *v = getenv("HM_REQUIRE");

	*state = v ? strdup(v) : NULL;
	return 0;
}

static int restore_env(void **state)
{
	if (*state) {
		setenv("HM_REQUIRE", *state, 1);
		free(*state);
	} else {
		unsetenv("HM_REQUIRE");
	}
	return 0;
}

static void test_hm_test_require_unset(void **state)
{
	unsetenv("HM_REQUIRE");
	assert_false(hm_test_require("kvm"));
	setenv("HM_REQUIRE", "", 1);
	assert_false(hm_test_require("kvm"));
	assert_false(hm_test_require(""));
}

static void test_hm_test_require_list(void **state)
{
	setenv("HM_REQUIRE", "kvm,uffd,bpf", 1);
	assert_true(hm_test_require("kvm"));
	assert_true(hm_test_require("uffd"));
	assert_true(hm_test_require("bpf"));
	assert_false(hm_test_require("kv"));
	assert_false(hm_test_require("kvmx"));
	assert_false(hm_test_require("uffd,bpf"));
	assert_false(hm_test_require(""));
	setenv("HM_REQUIRE", "bpf", 1);
	assert_true(hm_test_require("bpf"));
	assert_false(hm_test_require("kvm"));
	setenv("HM_REQUIRE", ",,kvm,", 1);
	assert_true(hm_test_require("kvm"));
	assert_false(hm_test_require(""));
}

/* Reports the facility; fails only when HM_REQUIRE=kvm and /dev/kvm is unusable. */
static void test_hm_have_kvm(void **state)
{
	hm_skip_unless("kvm", hm_have_kvm(), "/dev/kvm cannot be opened read-write");
	assert_true(hm_have_kvm());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hm_test_require_unset, save_env, restore_env),
		cmocka_unit_test_setup_teardown(test_hm_test_require_list, save_env, restore_env),
		cmocka_unit_test(test_hm_have_kvm),
	};

	return cmocka_run_group_tests_name("helpers", tests, NULL, NULL);
}
