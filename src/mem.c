// SPDX-License-Identifier: MIT
#define LOG_PREFIX "mem: "
#include "src/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "guest/abi.h"
#include "src/log.h"

int mem_init(struct guest_mem *gm, uint64_t size)
{
	void *p;

	gm->hva = NULL;
	gm->size = 0;
	gm->pages = 0;
	if (!size || size % HM_PAGE_SIZE || size > SIZE_MAX)
		return -EINVAL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (p == MAP_FAILED) {
		hm_perror("cannot map %llu bytes of guest RAM", (unsigned long long)size);
		return -ENOMEM;
	}
	/* THP would make first touch cost 2 MiB at a time and blur dirty tracking */
	if (madvise(p, size, MADV_NOHUGEPAGE))
		hm_dbg("madvise(MADV_NOHUGEPAGE) failed: %s", strerror(errno));
	gm->hva = p;
	gm->size = size;
	gm->pages = size / HM_PAGE_SIZE;
	return 0;
}

void mem_exit(struct guest_mem *gm)
{
	if (gm->hva)
		munmap(gm->hva, gm->size);
	gm->hva = NULL;
	gm->size = 0;
	gm->pages = 0;
}

bool mem_range_ok(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (!len)
		len = 1;
	return gpa < gm->size && len <= gm->size - gpa;
}

void *mem_gpa_to_hva(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (!gm->hva || !mem_range_ok(gm, gpa, len))
		return NULL;
	return gm->hva + gpa;
}

int64_t mem_resident_pages(const struct guest_mem *gm)
{
	const uint64_t chunk = 1ULL << 18; /* pages per mincore call: 1 GiB */
	unsigned char *vec;
	int64_t count = 0;

	vec = malloc(chunk);
	if (!vec)
		return -ENOMEM;
	for (uint64_t first = 0; first < gm->pages; first += chunk) {
		uint64_t n = min_t(uint64_t, chunk, gm->pages - first);

		if (mincore(gm->hva + first * HM_PAGE_SIZE, n * HM_PAGE_SIZE, vec)) {
			int err = -errno;

			free(vec);
			return err;
		}
		for (uint64_t i = 0; i < n; i++)
			count += vec[i] & 1;
	}
	free(vec);
	return count;
}
