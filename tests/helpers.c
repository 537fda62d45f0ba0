// SPDX-License-Identifier: MIT
#include "tests/helpers.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool hm_test_require(const char *facility)
{
	const char *list = getenv("HM_REQUIRE");
	size_t n = facility ? strlen(facility) : 0;

	if (!list || !n)
		return false;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, facility, n))
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

bool hm_have_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}
