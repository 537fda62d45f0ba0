// SPDX-License-Identifier: MIT
#define LOG_PREFIX "fault: "
#include "uffd/fault.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "src/log.h"
#include "src/mem.h"

#define PAGE 4096ULL

int fault_init(struct fault *f, struct guest_mem *gm, const struct bitmap *needed,
	       fault_request_fn request, void *arg)
{
	int err;

	memset(f, 0, sizeof(*f));
	f->u.fd = -1;
	f->quit_fd = -1;
	f->inited = true;
	f->gm = gm;
	f->needed = needed;
	f->nr_needed = bitmap_count(needed);
	f->request = request;
	f->arg = arg;
	pthread_mutex_init(&f->lock, NULL);
	err = bitmap_init(&f->requested, gm->pages);
	if (!err)
		err = bitmap_init(&f->received, gm->pages);
	f->req_ns = calloc(gm->pages, sizeof(uint64_t));
	f->lat_us = calloc(FAULT_LAT_MAX, sizeof(uint32_t));
	f->quit_fd = eventfd(0, EFD_CLOEXEC);
	if (!err && (!f->req_ns || !f->lat_us || f->quit_fd < 0))
		err = -ENOMEM;
	if (!err)
		err = uffd_open(&f->u);
	if (!err)
		err = uffd_register(&f->u, gm->hva, gm->size);
	if (err)
		fault_exit(f);
	return err;
}

unsigned int fault_hist_bucket(uint64_t us)
{
	unsigned int b = us ? 64 - (unsigned int)__builtin_clzll(us) : 0;

	return b < FAULT_HIST_BUCKETS ? b : FAULT_HIST_BUCKETS - 1;
}

static void note_latency(struct fault *f, uint64_t gfn, uint64_t now)
{
	uint64_t t = __atomic_exchange_n(&f->req_ns[gfn], 0, __ATOMIC_ACQ_REL);

	if (!t)
		return;
	f->st.blocked_ns += now - t;
	if (f->hist) {
		__atomic_fetch_add(&f->hist->count[fault_hist_bucket((now - t) / 1000)], 1,
				   __ATOMIC_RELAXED);
		__atomic_fetch_add(&f->hist->sum_us, (now - t) / 1000, __ATOMIC_RELAXED);
	}
	if (f->nr_lat < FAULT_LAT_MAX)
		f->lat_us[f->nr_lat++] = (uint32_t)min_t(uint64_t, (now - t) / 1000, UINT32_MAX);
}

int fault_place(struct fault *f, uint64_t gfn, const void *data)
{
	uint8_t *dst;
	uint64_t now;
	bool existed;
	int err;

	if (gfn >= f->gm->pages)
		return -EINVAL;
	dst = f->gm->hva + gfn * PAGE;
	if (bitmap_test(&f->received, gfn)) {
		pthread_mutex_lock(&f->lock);
		f->st.duplicates++;
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	err = data ? uffd_copy(&f->u, dst, data, PAGE, &existed)
		   : uffd_zeropage(&f->u, dst, PAGE, &existed);
	if (err)
		return err;
	now = hm_now_ns();
	pthread_mutex_lock(&f->lock);
	/* EEXIST: whoever placed it first counts it; only a real copy sets received */
	if (existed || bitmap_test_and_set(&f->received, gfn)) {
		f->st.duplicates++;
	} else {
		f->st.placed++;
		if (bitmap_test(f->needed, gfn) && ++f->needed_placed >= f->nr_needed)
			f->st.last_page_ns = now;
	}
	note_latency(f, gfn, now);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

bool fault_complete(struct fault *f)
{
	bool done;

	pthread_mutex_lock(&f->lock);
	done = f->needed_placed >= f->nr_needed;
	pthread_mutex_unlock(&f->lock);
	return done;
}

/* One missing page: zero it here, or ask the source once. */
static int handle_fault(struct fault *f, uint64_t addr)
{
	uint64_t gfn = (addr - (uintptr_t)f->gm->hva) / PAGE;
	uint8_t *page = f->gm->hva + gfn * PAGE;
	bool existed;

	if (gfn >= f->gm->pages)
		return -EFAULT;
	pthread_mutex_lock(&f->lock);
	f->st.faults++;
	pthread_mutex_unlock(&f->lock);
	if (bitmap_test(&f->received, gfn))
		return uffd_wake(&f->u, page, PAGE); /* placed while the message waited */
	if (!bitmap_test(f->needed, gfn)) {
		pthread_mutex_lock(&f->lock);
		f->st.local_zero++;
		pthread_mutex_unlock(&f->lock);
		return fault_place(f, gfn, NULL);
	}
	if (bitmap_test_and_set(&f->requested, gfn))
		return 0; /* asked already: the COPY will wake this fault too */
	__atomic_store_n(&f->req_ns[gfn], hm_now_ns(), __ATOMIC_RELEASE);
	pthread_mutex_lock(&f->lock);
	f->st.remote++;
	pthread_mutex_unlock(&f->lock);
	(void)existed;
	return f->request(f->arg, gfn);
}

static void *fault_thread(void *arg)
{
	struct fault *f = arg;
	struct pollfd p[2] = { { .fd = f->u.fd, .events = POLLIN },
			       { .fd = f->quit_fd, .events = POLLIN } };

	for (;;) {
		struct uffd_msg msg;
		ssize_t n;
		int err;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			f->err = -errno;
			break;
		}
		if (p[1].revents)
			break;
		n = read(f->u.fd, &msg, sizeof(msg));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue; /* spurious after poll */
		if (n != sizeof(msg)) {
			f->err = n < 0 ? -errno : -EIO;
			hm_err("reading userfaultfd: %s", strerror(-f->err));
			break;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		err = handle_fault(f, msg.arg.pagefault.address & ~(PAGE - 1));
		if (err) {
			f->err = err;
			hm_err("cannot serve a fault: %s", strerror(-err));
			break;
		}
	}
	return NULL;
}

int fault_start(struct fault *f)
{
	int err = pthread_create(&f->thread, NULL, fault_thread, f);

	if (err)
		return -err;
	f->started = true;
	return 0;
}

void fault_exit(struct fault *f)
{
	uint64_t one = 1;

	if (!f->inited)
		return;
	if (f->started) {
		if (write(f->quit_fd, &one, sizeof(one)) != sizeof(one))
			hm_warn("cannot wake the fault thread");
		pthread_join(f->thread, NULL);
		f->started = false;
	}
	uffd_close(&f->u);
	if (f->quit_fd >= 0)
		close(f->quit_fd);
	f->quit_fd = -1;
	bitmap_exit(&f->requested);
	bitmap_exit(&f->received);
	free(f->req_ns);
	f->req_ns = NULL;
	free(f->lat_us);
	f->lat_us = NULL;
	pthread_mutex_destroy(&f->lock);
	f->inited = false;
}

void fault_get_stats(struct fault *f, struct fault_stats *st)
{
	pthread_mutex_lock(&f->lock);
	*st = f->st;
	pthread_mutex_unlock(&f->lock);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a;
	uint32_t y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

uint32_t fault_latency_us(struct fault *f, double p)
{
	uint32_t v = 0;

	p = p < 0 ? 0 : p > 100 ? 100 : p;
	pthread_mutex_lock(&f->lock);
	if (f->nr_lat) {
		qsort(f->lat_us, f->nr_lat, sizeof(uint32_t), cmp_u32);
		v = f->lat_us[(uint32_t)((p / 100.0) * (f->nr_lat - 1) + 0.5)];
	}
	pthread_mutex_unlock(&f->lock);
	return v;
}
