// SPDX-License-Identifier: MIT
/*
 * Unit tests for uffd/uffd.h and uffd/fault.h with a real userfaultfd on an
 * anonymous mapping in this process: reader threads stand in for vCPUs
 * touching missing pages, the request callback for the link to the source.
 * Every wait is bounded; the teardown unregisters (which wakes any reader
 * still blocked on a missing page) before it joins the readers.
 */
#include "tests/helpers.h"

#include <poll.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "src/bitmap.h"
#include "src/mem.h"
#include "uffd/fault.h"
#include "uffd/uffd.h"

#define PAGE	    4096u
#define WAIT_NS	    (5ULL * 1000000000ULL)
#define MAX_READERS 4
#define MAX_REQS    64

struct ctx;

/* A thread copying one guest page out: it blocks while the page is missing. */
struct reader {
	struct ctx *c;
	uint64_t gfn;
	pthread_t t;
	bool started;
	int done; /* atomic */
	uint64_t page[PAGE / 8];
};

struct ctx {
	struct guest_mem gm;
	bool mem_ok;
	struct bitmap needed;
	struct fault f;
	bool fault_ok;
	bool place_on_request; /* the callback places the page itself */
	pthread_mutex_t lock;  /* guards reqs, nr_reqs, place_err */
	uint64_t reqs[MAX_REQS];
	unsigned nr_reqs;
	int place_err;
	struct reader r[MAX_READERS];
	unsigned nr_readers;
};

static uint64_t pattern(uint64_t gfn, uint64_t word)
{
	return ((gfn + 1) * 0x9e3779b97f4a7c15ULL) ^ (word * 0x100000001b3ULL) ^
	       0x5a5a5a5a5a5a5a5aULL;
}

static void fill_page(uint64_t *buf, uint64_t gfn)
{
	for (uint64_t i = 0; i < PAGE / 8; i++)
		buf[i] = pattern(gfn, i);
}

static void assert_page_pattern(const uint64_t *buf, uint64_t gfn)
{
	for (uint64_t i = 0; i < PAGE / 8; i++)
		if (buf[i] != pattern(gfn, i))
			fail_msg("page %llu word %llu: got %#llx, expected %#llx",
				 (unsigned long long)gfn, (unsigned long long)i,
				 (unsigned long long)buf[i], (unsigned long long)pattern(gfn, i));
}

static void assert_page_zero(const uint64_t *buf, uint64_t gfn)
{
	for (uint64_t i = 0; i < PAGE / 8; i++)
		if (buf[i])
			fail_msg("page %llu word %llu: got %#llx, expected 0",
				 (unsigned long long)gfn, (unsigned long long)i,
				 (unsigned long long)buf[i]);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Poll @cond every millisecond for at most 5 s, then fail. */
#define WAIT_FOR(cond, what)                                                                       \
	do {                                                                                       \
		uint64_t t0_ = hm_now_ns();                                                        \
		while (!(cond)) {                                                                  \
			if (hm_now_ns() - t0_ > WAIT_NS)                                           \
				fail_msg("timed out after 5 s waiting for %s", (what));            \
			sleep_ms(1);                                                               \
		}                                                                                  \
	} while (0)

static int on_request(void *arg, uint64_t gfn)
{
	struct ctx *c = arg;
	int err = 0;

	pthread_mutex_lock(&c->lock);
	if (c->nr_reqs < MAX_REQS)
		c->reqs[c->nr_reqs] = gfn;
	c->nr_reqs++;
	pthread_mutex_unlock(&c->lock);
	if (c->place_on_request) {
		uint64_t buf[PAGE / 8];

		fill_page(buf, gfn);
		err = fault_place(&c->f, gfn, buf);
		if (err) {
			pthread_mutex_lock(&c->lock);
			c->place_err = err;
			pthread_mutex_unlock(&c->lock);
		}
	}
	return err;
}

static unsigned nr_requests(struct ctx *c)
{
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = c->nr_reqs;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void *reader_fn(void *arg)
{
	struct reader *r = arg;

	/* volatile source: the copy must really touch guest memory */
	const volatile uint64_t *src =
	    (const volatile uint64_t *)(r->c->gm.hva + r->gfn * (uint64_t)PAGE);

	for (unsigned i = 0; i < PAGE / 8; i++)
		r->page[i] = src[i];
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool reader_done(struct reader *r)
{
	return __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);
}

static struct reader *reader_start(struct ctx *c, uint64_t gfn)
{
	struct reader *r;

	assert_true(c->nr_readers < MAX_READERS);
	assert_true(gfn < c->gm.pages);
	r = &c->r[c->nr_readers];
	r->c = c;
	r->gfn = gfn;
	r->done = 0;
	assert_int_equal(pthread_create(&r->t, NULL, reader_fn, r), 0);
	r->started = true;
	c->nr_readers++;
	return r;
}

/* Copy page @gfn out on another thread; fail if that takes more than 5 s. */
static struct reader *read_page(struct ctx *c, uint64_t gfn)
{
	struct reader *r = reader_start(c, gfn);

	WAIT_FOR(reader_done(r), "a reader to get its page");
	assert_int_equal(pthread_join(r->t, NULL), 0);
	r->started = false;
	return r;
}

/* Guest RAM of @pages pages and an empty 'needed' bitmap. */
static void ctx_init(struct ctx *c, uint64_t pages)
{
	assert_int_equal(mem_init(&c->gm, pages * PAGE), 0);
	c->mem_ok = true;
	assert_int_equal(c->gm.pages, pages);
	assert_int_equal(bitmap_init(&c->needed, pages), 0);
}

static void ctx_start(struct ctx *c, bool place_on_request)
{
	c->place_on_request = place_on_request;
	assert_int_equal(fault_init(&c->f, &c->gm, &c->needed, on_request, c), 0);
	c->fault_ok = true;
	assert_int_equal(fault_start(&c->f), 0);
}

/*
 * Idempotent: stop the fault thread and unregister (this wakes readers still
 * waiting for a page; they then see zeroes), join the readers, unmap.
 */
static void ctx_release(struct ctx *c)
{
	if (c->fault_ok) {
		fault_exit(&c->f);
		c->fault_ok = false;
	}
	for (unsigned i = 0; i < c->nr_readers; i++) {
		if (c->r[i].started) {
			pthread_join(c->r[i].t, NULL);
			c->r[i].started = false;
		}
	}
	bitmap_exit(&c->needed);
	if (c->mem_ok) {
		mem_exit(&c->gm);
		c->mem_ok = false;
	}
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	pthread_mutex_init(&c->lock, NULL);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	ctx_release(c);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return 0;
}

static void get_stats(struct ctx *c, struct fault_stats *st)
{
	fault_get_stats(&c->f, st);
}

/* A needed page faults, is requested once, placed by the callback, and read back. */
static void test_fault_request_then_place(void **state)
{
	struct ctx *c = *state;
	struct fault_stats st;
	struct reader *r;

	hm_skip_unless("uffd", uffd_available(), "userfaultfd is not available");
	ctx_init(c, 64);
	bitmap_set_range(&c->needed, 0, 32);
	ctx_start(c, true);

	r = read_page(c, 5);
	assert_page_pattern(r->page, 5);
	assert_int_equal(r->page[123], pattern(5, 123));
	assert_int_equal(nr_requests(c), 1);
	assert_int_equal(c->reqs[0], 5);
	assert_int_equal(c->place_err, 0);
	assert_int_equal(c->f.err, 0);

	/* the wake-up can beat the statistics update: give it a moment */
	get_stats(c, &st);
	for (int i = 0; i < 100 && st.placed < 1; i++) {
		poll(NULL, 0, 10);
		get_stats(c, &st);
	}
	assert_int_equal(st.remote, 1);
	assert_true(st.faults >= 1);
	assert_int_equal(st.placed, 1);
	assert_int_equal(st.local_zero, 0);
	assert_int_equal(st.duplicates, 0);
	assert_int_equal(st.last_page_ns, 0);
	assert_false(fault_complete(&c->f));
	/* one latency sample; its value may round down to 0 us */
	(void)fault_latency_us(&c->f, 0);
	(void)fault_latency_us(&c->f, 50);
	(void)fault_latency_us(&c->f, 100);
	assert_true(fault_latency_us(&c->f, 50) <= fault_latency_us(&c->f, 100));

	/* present now: a second read neither faults into a request nor changes it */
	r = read_page(c, 5);
	assert_page_pattern(r->page, 5);
	assert_int_equal(nr_requests(c), 1);
	ctx_release(c);
}

/* A page the source does not hold faults in as zeroes, without a request. */
static void test_fault_not_needed_is_zero(void **state)
{
	struct ctx *c = *state;
	struct fault_stats st;
	struct reader *r;

	hm_skip_unless("uffd", uffd_available(), "userfaultfd is not available");
	ctx_init(c, 64);
	bitmap_set_range(&c->needed, 0, 32);
	ctx_start(c, true);

	r = read_page(c, 40);
	assert_page_zero(r->page, 40);
	assert_int_equal(nr_requests(c), 0);
	assert_int_equal(c->f.err, 0);

	get_stats(c, &st);
	assert_int_equal(st.local_zero, 1);
	assert_int_equal(st.remote, 0);
	assert_true(st.faults >= 1);
	assert_int_equal(st.duplicates, 0);
	assert_int_equal(fault_latency_us(&c->f, 50), 0); /* no requested page */
	assert_false(fault_complete(&c->f));
	ctx_release(c);
}

/* Concurrent faults on one missing page make one request; one placement wakes all. */
static void test_fault_dedup(void **state)
{
	struct ctx *c = *state;
	uint64_t buf[PAGE / 8];
	struct fault_stats st;
	const uint64_t gfn = 9;
	const unsigned nr = 3;

	hm_skip_unless("uffd", uffd_available(), "userfaultfd is not available");
	ctx_init(c, 64);
	bitmap_set_range(&c->needed, 0, 32);
	ctx_start(c, false);

	for (unsigned i = 0; i < nr; i++)
		reader_start(c, gfn);
	WAIT_FOR(nr_requests(c) >= 1, "the first request");
	sleep_ms(50); /* give the other faults time to arrive */
	assert_int_equal(nr_requests(c), 1);
	assert_int_equal(c->reqs[0], gfn);
	for (unsigned i = 0; i < nr; i++)
		assert_false(reader_done(&c->r[i])); /* all still wait for the page */

	fill_page(buf, gfn);
	assert_int_equal(fault_place(&c->f, gfn, buf), 0);
	for (unsigned i = 0; i < nr; i++) {
		WAIT_FOR(reader_done(&c->r[i]), "every reader to be woken");
		assert_int_equal(pthread_join(c->r[i].t, NULL), 0);
		c->r[i].started = false;
		assert_page_pattern(c->r[i].page, gfn);
	}
	assert_int_equal(nr_requests(c), 1);
	assert_int_equal(c->f.err, 0);

	get_stats(c, &st);
	assert_int_equal(st.remote, 1);
	assert_int_equal(st.placed, 1);
	assert_int_equal(st.duplicates, 0);
	assert_true(st.faults >= 1 && st.faults <= nr);
	/* requested, then placed >= 50 ms later */
	assert_true(st.blocked_ns >= 50ULL * 1000000ULL);
	assert_true(fault_latency_us(&c->f, 50) >= 50000);
	ctx_release(c);
}

/* A pushed page is simply there: no fault, no request; a second copy is a duplicate. */
static void test_fault_place_before_fault(void **state)
{
	struct ctx *c = *state;
	uint64_t buf[PAGE / 8];
	struct fault_stats st;
	struct reader *r;

	hm_skip_unless("uffd", uffd_available(), "userfaultfd is not available");
	ctx_init(c, 64);
	bitmap_set_range(&c->needed, 0, 32);
	ctx_start(c, true);

	fill_page(buf, 7);
	assert_int_equal(fault_place(&c->f, 7, buf), 0);
	r = read_page(c, 7);
	assert_page_pattern(r->page, 7);
	assert_int_equal(nr_requests(c), 0);

	get_stats(c, &st);
	assert_int_equal(st.placed, 1);
	assert_int_equal(st.remote, 0);
	assert_int_equal(st.faults, 0);
	assert_int_equal(st.duplicates, 0);

	/* the same page again, with other contents: counted, not copied */
	fill_page(buf, 8);
	assert_int_equal(fault_place(&c->f, 7, buf), 0);
	get_stats(c, &st);
	assert_int_equal(st.duplicates, 1);
	assert_int_equal(st.placed, 1);
	r = read_page(c, 7);
	assert_page_pattern(r->page, 7);
	/* as a zero page too */
	assert_int_equal(fault_place(&c->f, 7, NULL), 0);
	get_stats(c, &st);
	assert_int_equal(st.duplicates, 2);
	assert_int_equal(st.placed, 1);
	assert_int_equal(c->f.err, 0);
	ctx_release(c);
}

/* fault_complete() turns true with the last needed page, and stamps it. */
static void test_fault_complete(void **state)
{
	static const uint64_t gfns[] = { 1, 3, 10, 60 };
	struct ctx *c = *state;
	uint64_t buf[PAGE / 8];
	struct fault_stats st;
	uint64_t t0;

	hm_skip_unless("uffd", uffd_available(), "userfaultfd is not available");
	ctx_init(c, 64);
	for (size_t i = 0; i < ARRAY_SIZE(gfns); i++)
		bitmap_set(&c->needed, gfns[i]);
	ctx_start(c, true);
	assert_false(fault_complete(&c->f));

	t0 = hm_now_ns();
	for (size_t i = 0; i < ARRAY_SIZE(gfns); i++) {
		get_stats(c, &st);
		assert_int_equal(st.last_page_ns, 0);
		assert_false(fault_complete(&c->f));
		fill_page(buf, gfns[i]);
		/* the second one as a zero page: it counts all the same */
		assert_int_equal(fault_place(&c->f, gfns[i], i == 1 ? NULL : buf), 0);
	}
	assert_true(fault_complete(&c->f));
	get_stats(c, &st);
	assert_int_not_equal(st.last_page_ns, 0);
	assert_true(st.last_page_ns >= t0 && st.last_page_ns <= hm_now_ns());
	assert_int_equal(st.placed, ARRAY_SIZE(gfns));
	assert_int_equal(st.remote, 0);
	assert_int_equal(st.duplicates, 0);

	for (size_t i = 0; i < ARRAY_SIZE(gfns); i++) {
		struct reader *r = read_page(c, gfns[i]);

		if (i == 1)
			assert_page_zero(r->page, gfns[i]);
		else
			assert_page_pattern(r->page, gfns[i]);
	}
	assert_int_equal(nr_requests(c), 0);
	assert_true(fault_complete(&c->f));
	ctx_release(c);
}

/* A gfn past guest RAM is refused and changes nothing. */
static void test_fault_place_out_of_range(void **state)
{
	struct ctx *c = *state;
	uint64_t buf[PAGE / 8];
	struct fault_stats st;

	hm_skip_unless("uffd", uffd_available(), "userfaultfd is not available");
	ctx_init(c, 64);
	bitmap_set_range(&c->needed, 0, 32);
	ctx_start(c, true);

	fill_page(buf, 0);
	assert_int_equal(fault_place(&c->f, 64, buf), -EINVAL);
	assert_int_equal(fault_place(&c->f, 64, NULL), -EINVAL);
	assert_int_equal(fault_place(&c->f, 65, buf), -EINVAL);
	assert_int_equal(fault_place(&c->f, 1ULL << 40, buf), -EINVAL);
	assert_int_equal(fault_place(&c->f, UINT64_MAX, buf), -EINVAL);
	get_stats(c, &st);
	assert_int_equal(st.placed, 0);
	assert_int_equal(st.duplicates, 0);
	assert_false(fault_complete(&c->f));

	/* the last page is still in range */
	fill_page(buf, 63);
	assert_int_equal(fault_place(&c->f, 63, buf), 0);
	get_stats(c, &st);
	assert_int_equal(st.placed, 1);
	ctx_release(c);
}

/* The raw wrappers: register, COPY, ZEROPAGE, EEXIST reported as existed. */
static void test_uffd_register_checks(void **state)
{
	const size_t len = 4 * PAGE;
	uint64_t buf[PAGE / 8];
	struct uffd u;
	bool existed;
	uint8_t *map;

	hm_skip_unless("uffd", uffd_available(), "userfaultfd is not available");
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);

	assert_int_equal(uffd_open(&u), 0);
	assert_true(u.fd >= 0);
	assert_null(u.base);
	/* an address nothing is mapped at cannot be registered */
	assert_true(uffd_register(&u, map + len + (1ULL << 40), PAGE) < 0);
	assert_null(u.base);
	assert_int_equal(uffd_register(&u, map, len), 0);
	assert_ptr_equal(u.base, map);
	assert_int_equal(u.len, len);

	fill_page(buf, 0);
	existed = true;
	assert_int_equal(uffd_copy(&u, map, buf, PAGE, &existed), 0);
	assert_false(existed);
	assert_page_pattern((const uint64_t *)map, 0); /* present: no fault */

	/* the page is there: EEXIST is success, and the contents stay */
	fill_page(buf, 1);
	existed = false;
	assert_int_equal(uffd_copy(&u, map, buf, PAGE, &existed), 0);
	assert_true(existed);
	assert_page_pattern((const uint64_t *)map, 0);
	existed = false;
	assert_int_equal(uffd_zeropage(&u, map, PAGE, &existed), 0);
	assert_true(existed);
	assert_page_pattern((const uint64_t *)map, 0);

	existed = true;
	assert_int_equal(uffd_zeropage(&u, map + PAGE, PAGE, &existed), 0);
	assert_false(existed);
	assert_page_zero((const uint64_t *)(map + PAGE), 1);

	/* COPY into a page outside the registered range fails */
	assert_true(uffd_copy(&u, map + len + (1ULL << 40), buf, PAGE, &existed) < 0);
	assert_int_equal(uffd_wake(&u, map + 2 * PAGE, PAGE), 0);

	assert_int_equal(uffd_unregister(&u), 0);
	assert_null(u.base);
	assert_int_equal(uffd_unregister(&u), 0); /* nothing registered: no-op */
	/* unregistered: an ordinary anonymous page again */
	assert_page_zero((const uint64_t *)(map + 2 * PAGE), 2);
	uffd_close(&u);
	assert_int_equal(u.fd, -1);
	uffd_close(&u); /* closed: harmless */

	/* close unregisters by itself */
	assert_int_equal(uffd_open(&u), 0);
	assert_int_equal(uffd_register(&u, map + 3 * PAGE, PAGE), 0);
	uffd_close(&u);
	assert_int_equal(u.fd, -1);
	assert_page_zero((const uint64_t *)(map + 3 * PAGE), 3);

	assert_int_equal(munmap(map, len), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fault_request_then_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_not_needed_is_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_place_before_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_complete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_place_out_of_range, setup, teardown),
		cmocka_unit_test(test_uffd_register_checks),
	};

	return cmocka_run_group_tests_name("uffd", tests, NULL, NULL);
}
