// SPDX-License-Identifier: MIT
/*
 * The destination's session: accept a source (link.c turns strays away),
 * pre-migration checks (dest_checks.c), pre-copy pages, and the switch-over
 * handshake in which the guest runs here only after the source's GO.
 * Post-copy lives in dest_postcopy.c. docs/switchover.md has the state machine.
 */
#define LOG_PREFIX "dest: "
#include "src/dest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>
#include "src/compress.h"
#include "src/dest_priv.h"
#include "src/inject.h"
#include "src/log.h"
#include "src/vm.h"
#include "src/vmstate.h"

#define AFTER_WINDOW_NS (1 * NSEC_PER_SEC)

int dest_fail(struct dest *d, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&d->why_lock);
	if (!d->why[0]) {
		va_start(ap, fmt);
		vsnprintf(d->why, sizeof(d->why), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&d->why_lock);
	return err < 0 ? err : -EIO;
}

int dest_recv(struct dest *d, struct proto_hdr *h)
{
	const char *why = "malformed frame";
	int err = net_recv(&d->link.bulk, h, d->rx, sizeof(d->rx), &why);

	if (err == -EBADMSG || err == -EPROTO)
		return dest_fail(d, err, "bad frame from the source: %s", why);
	if (err)
		return dest_fail(d, err, "%s", link_strerror(err, "source"));
	if (h->type == PROTO_ERROR) {
		struct proto_error e;

		if (proto_error_decode(d->rx, h->len, &e, &why))
			return dest_fail(d, -EPROTO, "the source failed with a malformed error");
		return dest_fail(d, -ECANCELED, "the source gave up: %s", e.msg);
	}
	d->st.bytes = d->link.bulk.received;
	return 0;
}

static int place_pages(struct dest *d, size_t len)
{
	const char *why = "";
	struct proto_pages p;
	const uint8_t *data;
	uint32_t k = 0;
	int err;

	err = proto_pages_decode(d->rx, len, d->vm->mem.pages, &p, &why);
	if (err)
		return dest_fail(d, err, "bad page batch: %s", why);
	data = p.data;
	if (p.flags & PROTO_PAGES_LZ4) {
		if (p.raw_len > sizeof(d->scratch) ||
		    compress_decode(p.data, p.data_len, d->scratch, p.raw_len))
			return dest_fail(d, -EBADMSG,
					 "bad page batch: lz4 data does not decode to the batch");
		data = d->scratch;
	}
	for (uint32_t i = 0; i < p.count; i++) {
		uint64_t g = proto_pages_gfn(&p, i) & ~PROTO_ZERO_PAGE;
		uint8_t *dst = mem_gpa_to_hva(&d->vm->mem, g * HM_PAGE_SIZE, HM_PAGE_SIZE);

		if (!dst)
			return dest_fail(d, -EBADMSG, "bad page batch: page outside guest RAM");
		if (proto_pages_gfn(&p, i) & PROTO_ZERO_PAGE) {
			memset(dst, 0, HM_PAGE_SIZE);
			d->st.zero_pages++;
		} else {
			memcpy(dst, data + (size_t)k++ * HM_PAGE_SIZE, HM_PAGE_SIZE);
		}
		bitmap_set(&d->written, g);
	}
	d->st.pages += p.count;
	return 0;
}

/* Apply the VMSTATE records; the VM has not run yet. */
static int restore(struct dest *d, uint64_t advance_ns)
{
	struct vmstate_rec r;
	const char *why = "";
	size_t off = 0;
	bool end = false;
	int ret;

	while ((ret = vmstate_next(d->state, d->state_len, &off, &r, &why)) > 0) {
		if (end)
			return dest_fail(d, -EBADMSG, "state records after the end record");
		if (r.type == VS_END) {
			end = true;
			continue;
		}
		if (r.type == VS_DEVICES) {
			if (r.len != sizeof(struct vmstate_devices))
				return dest_fail(d, -EBADMSG, "device state of wrong size");
			continue; /* the I/O device resumes from the ring in guest RAM */
		}
		ret = vm_arch_restore(d->vm, &r, advance_ns, d->why, sizeof(d->why));
		if (ret < 0)
			return ret;
		if (ret > 0)
			return dest_fail(d, -EBADMSG, "unknown state record %u", r.type);
	}
	if (ret < 0)
		return dest_fail(d, ret, "bad VM state: %s", why);
	return end ? 0 : dest_fail(d, -EBADMSG, "VM state without its end record");
}

/* Pages, rounds, the page map, then state and SWITCH; anything else is an error. */
static int receive(struct dest *d, uint32_t *switch_flags, uint64_t *state_at)
{
	struct proto_round r;
	const char *why = "";
	struct proto_hdr h;
	int err;

	for (;;) {
		err = dest_recv(d, &h);
		if (err)
			return err;
		switch (h.type) {
		case PROTO_PAGES:
			if (d->state_len)
				return dest_fail(d, -EPROTO, "pages after the VM state");
			err = place_pages(d, (size_t)h.len);
			break;
		case PROTO_ROUND:
			err = proto_round_decode(d->rx, (size_t)h.len, &r, &why);
			d->st.rounds = r.round; /* as the source counts them */
			break;
		case PROTO_VMSTATE:
			if (d->state_len)
				return dest_fail(d, -EPROTO, "VM state sent twice");
			memcpy(d->state, d->rx, (size_t)h.len); /* h.len <= PROTO_VMSTATE_MAX */
			d->state_len = (size_t)h.len;
			*state_at = hm_now_ns();
			break;
		case PROTO_PAGEMAP:
			err = dest_postcopy_add_map(d, (size_t)h.len);
			break;
		case PROTO_SWITCH:
			if (!d->state_len)
				return dest_fail(d, -EPROTO, "switch-over before the VM state");
			if (!(h.flags & PROTO_SWITCH_POSTCOPY) && d->needed.words)
				return dest_fail(d, -EPROTO, "page map without a post-copy switch");
			*switch_flags = h.flags;
			return 0;
		default:
			return dest_fail(d, -EPROTO, "unexpected frame %u before the switch-over",
					 h.type);
		}
		if (err)
			return dest_fail(d, err, "%s", why);
	}
}

void dest_cut(struct dest *d)
{
	pthread_mutex_lock(&d->ulock);
	if (d->link.bulk.fd >= 0)
		shutdown(d->link.bulk.fd, SHUT_RDWR);
	if (d->link.urgent.fd >= 0)
		shutdown(d->link.urgent.fd, SHUT_RDWR);
	pthread_mutex_unlock(&d->ulock);
}

/* Load the state (and arm post-copy), then READY: the guest does not run yet. */
static int ready(struct dest *d, uint32_t flags, uint64_t state_at)
{
	struct proto_ready r = { 0 };
	uint8_t buf[PROTO_READY_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	uint64_t t0 = hm_now_ns();
	int err = 0;

	if (flags & PROTO_SWITCH_POSTCOPY)
		err = dest_postcopy_arm(d);
	if (!err)
		err = restore(d, t0 - state_at);
	if (!err && __atomic_load_n(&d->poisoned, __ATOMIC_ACQUIRE))
		err = dest_fail(d, -EPIPE, "the link to the source broke while the state loaded");
	if (err)
		return err;
	r.restore_ns = hm_now_ns() - t0;
	proto_ready_encode(buf, &r);
	__atomic_store_n(&d->phase, PROTO_DST_WAIT_GO, __ATOMIC_RELEASE);
	if (__atomic_load_n(&d->poisoned, __ATOMIC_ACQUIRE))
		return dest_fail(d, -EPIPE, "the link to the source broke while the state loaded");
	if (inject_at("dst-ready") == INJECT_SKIP) {
		dest_cut(d); /* READY lost with the link */
		return 0;
	}
	err = net_send(&d->link.bulk, PROTO_READY, 0, &v, 1);
	inject_at("dst-after-ready");
	if (err)
		hm_warn("READY not sent (%s); waiting for the source",
			link_strerror(err, "source"));
	return 0;
}

/* Run the guest: only after GO. */
static int run(struct dest *d, uint64_t t_switch)
{
	struct proto_started st = { 0 };
	uint8_t buf[PROTO_STARTED_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	int err;

	/* pages were zero-filled to free a blocked thread: this copy must never run */
	if (__atomic_load_n(&d->poisoned, __ATOMIC_ACQUIRE))
		return dest_fail(d, -ECANCELED, "the VM's pages were lost here; it does not run");
	err = vm_start(d->vm);
	if (err)
		return dest_fail(d, err, "cannot start the VM");
	d->run_ns = hm_now_ns();
	__atomic_store_n(&d->phase, PROTO_DST_RUNNING, __ATOMIC_RELEASE);
	st.switch_to_run_ns = d->run_ns - t_switch;
	d->st.switch_to_run_ns = st.switch_to_run_ns;
	proto_started_encode(buf, &st);
	if (inject_at("dst-started") == INJECT_SKIP) {
		dest_cut(d); /* STARTED lost with the link */
		return 0;
	}
	/* lost: the source reconnects and asks (STATUS) */
	if (net_send(&d->link.bulk, PROTO_STARTED, 0, &v, 1))
		hm_warn("the source did not get our start notice; it will ask again");
	return 0;
}

/* Wait for GO; a broken link waits for the source to come back and ask. */
static int wait_go(struct dest *d, uint64_t t_switch)
{
	struct proto_hdr h;
	int err;

	for (;;) {
		err = dest_recv(d, &h);
		if (!err && h.type == PROTO_GO && inject_at("dst-go") == INJECT_CUT) {
			dest_cut(d); /* GO lost with the link */
			err = dest_fail(d, -EPIPE, "injected: GO lost");
		}
		if (!err && h.type == PROTO_GO)
			return run(d, t_switch);
		if (!err)
			return dest_fail(d, -EPROTO, "expected GO, got frame %u", h.type);
		if (!link_error_transient(err))
			return err; /* the source gave up before its fence: it keeps the VM */
		d->why[0] = 0;
		err = dest_reconnect(d, err);
		if (err)
			return err;
		if (d->phase == PROTO_DST_RUNNING)
			return 0;
	}
}

/* Pre-copy: wait until the source knows the guest runs here (its DONE). */
static void wait_release(struct dest *d)
{
	struct proto_hdr h;
	int err;

	for (;;) {
		err = dest_recv(d, &h);
		if (!err && h.type == PROTO_DONE)
			return;
		if (!err || !link_error_transient(err) || dest_reconnect(d, err)) {
			hm_warn("the source did not confirm the switch-over (%s); the guest runs "
				"here",
				d->why[0] ? d->why : "unexpected frame");
			return;
		}
	}
}

/* While the session runs, the listener answers everyone else: busy. */
static void *doorman_thread(void *arg)
{
	struct dest *d = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = d->p.listen_fd, .events = POLLIN },
				       { .fd = d->doorman_quit, .events = POLLIN } };

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN)
			link_turn_away(&d->link, d->p.listen_fd, d->doorman_quit, 0);
	}
	return NULL;
}

static void doorman_start(struct dest *d)
{
	if (d->doorman_started || d->doorman_quit < 0)
		return;
	if (pthread_create(&d->doorman, NULL, doorman_thread, d)) {
		hm_warn("cannot start the thread that turns other sources away");
		return;
	}
	d->doorman_started = true;
}

static void doorman_stop(struct dest *d)
{
	uint64_t v = 1;

	if (!d->doorman_started)
		return;
	if (write(d->doorman_quit, &v, sizeof(v)) != sizeof(v))
		hm_warn("cannot stop the doorman thread: %s", strerror(errno));
	pthread_join(d->doorman, NULL);
	if (read(d->doorman_quit, &v, sizeof(v)) != sizeof(v))
		hm_dbg("doorman eventfd was not set");
	d->doorman_started = false;
}

/* Close the link to the source, its urgent channel's thread first. */
static void drop_link(struct dest *d)
{
	dest_postcopy_stop_urgent(d);
	pthread_mutex_lock(&d->ulock);
	link_close(&d->link);
	pthread_mutex_unlock(&d->ulock);
}

/*
 * One attempt, for at most @left_ms: take a returning source's connections,
 * tell it what is still missing and, in post-copy, serve its faults again.
 * 0, -ECANCELED (stop asked), -ETIMEDOUT, or another -errno with @why.
 */
static int reconnect_once(struct dest *d, int left_ms, char *why, size_t whylen)
{
	struct proto_status st = { .phase = d->phase };
	uint8_t buf[PROTO_STATUS_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	bool resume;
	int err;

	err = link_accept(&d->link, d->p.listen_fd, d->p.stop_fd, left_ms, true, &resume, why,
			  whylen);
	if (err == -ECANCELED || err == -ETIMEDOUT)
		return err;
	pthread_mutex_lock(&d->ulock);
	err = err ? err : link_answer(&d->link, d->p.listen_fd, d->p.stop_fd, why, whylen);
	pthread_mutex_unlock(&d->ulock);
	st.missing = dest_missing(d);
	proto_status_encode(buf, &st);
	if (!err)
		err = net_send(&d->link.bulk, PROTO_STATUS, 0, &v, 1);
	if (!err && d->phase == PROTO_DST_RUNNING && d->postcopy)
		err = dest_postcopy_resume(d);
	if (!err)
		hm_warn("the source reconnected; %llu pages still to come",
			(unsigned long long)st.missing);
	return err;
}

int dest_reconnect(struct dest *d, int cause)
{
	uint64_t deadline = hm_now_ns() + (uint64_t)d->p.reconnect_ms * NSEC_PER_MSEC;
	char why[256];
	int err;

	doorman_stop(d);
	drop_link(d);
	hm_warn("link to the source lost (%s)%s; waiting up to %.0f s for it to reconnect",
		link_strerror(cause, "source"),
		d->phase == PROTO_DST_RUNNING ? "; the guest waits for its pages"
					      : "; the guest does not run here until GO",
		d->p.reconnect_ms / 1000.0);
	inject_at("dst-reconnect");
	while (hm_now_ns() < deadline) {
		why[0] = 0;
		err = reconnect_once(d, (int)((deadline - hm_now_ns()) / NSEC_PER_MSEC) + 1, why,
				     sizeof(why));
		if (err == -ECANCELED || err == -ETIMEDOUT)
			break;
		if (!err) {
			d->link.bulk.timeout_ms = DEST_IO_TIMEOUT_MS;
			doorman_start(d);
			return 0;
		}
		hm_warn("reconnection failed: %s", why[0] ? why : strerror(-err));
		drop_link(d);
	}
	return dest_fail(d, cause, "the link to the source broke and it did not come back");
}

/* Accept a source and receive its VM until READY, then GO. */
static int move(struct dest *d)
{
	uint32_t flags = 0;
	uint64_t state_at = 0;
	bool resume;
	int err;

	__atomic_store_n(&d->phase, PROTO_DST_RECEIVING, __ATOMIC_RELEASE);
	err = link_accept(&d->link, d->p.listen_fd, d->p.stop_fd, d->p.wait_ms, false, &resume,
			  d->why, sizeof(d->why));
	if (!err)
		err = link_answer(&d->link, d->p.listen_fd, d->p.stop_fd, d->why, sizeof(d->why));
	if (err)
		return err;
	doorman_start(d);
	d->link.bulk.timeout_ms = DEST_IO_TIMEOUT_MS;
	d->link.urgent.timeout_ms = DEST_IO_TIMEOUT_MS;
	err = dest_checks(d);
	if (!err)
		err = receive(d, &flags, &state_at);
	if (!err)
		err = ready(d, flags, state_at);
	return err ? err : wait_go(d, state_at);
}

/* The guest never ran here: drop everything (the source keeps or resumes it). */
static void discard(struct dest *d, int err)
{
	if (d->link.bulk.fd >= 0 && !link_error_transient(err) && err != -ECANCELED && !d->refused)
		net_send_error(&d->link.bulk, err, d->why);
	dest_postcopy_exit(d);
	bitmap_exit(&d->written);
	link_close(&d->link);
	vm_free(d->vm);
	d->vm = NULL;
}

/*
 * Sleep @ns in 5 ms steps; false when the destination is shutting down.
 * (Steps, not a deadline: the fuzzers scale nanosleep down, see
 * tests/fuzz_session.c.)
 */
static bool nap(struct dest *d, uint64_t ns)
{
	struct timespec ts = { 0, 5 * NSEC_PER_MSEC };

	for (uint64_t i = 0; i < ns / (5 * NSEC_PER_MSEC); i++) {
		if (__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE))
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

/* Tell the source how the guest runs here (over ~1 s after its first report). */
static void report_after(struct dest *d)
{
	struct proto_after a = { 0 };
	uint8_t buf[PROTO_AFTER_SIZE];
	struct iovec v = { buf, sizeof(buf) };
	uint64_t first = 0;
	uint64_t u0;
	uint64_t t0;

	for (int i = 0; i < 200 && !(first = devwin_first_report_ns(&d->vm->dw)); i++)
		if (!nap(d, 5 * NSEC_PER_MSEC))
			return;
	if (first) {
		u0 = devwin_units(&d->vm->dw);
		t0 = hm_now_ns();
		if (!nap(d, AFTER_WINDOW_NS))
			return;
		a.units_per_s = (devwin_units(&d->vm->dw) - u0) * NSEC_PER_SEC / (hm_now_ns() - t0);
		a.first_report_ns = first - d->run_ns;
	}
	proto_after_encode(buf, &a);
	if (net_send(&d->link.bulk, PROTO_AFTER, 0, &v, 1))
		hm_dbg("the source left before our report");
}

static void *dest_thread(void *arg)
{
	struct dest *d = arg;
	int err = move(d);

	if (err) {
		doorman_stop(d);
		discard(d, err);
		d->err = err;
		d->done = true;
		d->event(d->event_arg, err);
		return NULL;
	}
	d->running = true;
	d->event(d->event_arg, 0);
	if (d->postcopy)
		err = dest_postcopy_run(d);
	else
		wait_release(d);
	if (!err)
		report_after(d);
	/* the doorman stays: while the VM runs here, other sources are told busy */
	link_close(&d->link);
	bitmap_exit(&d->written);
	d->err = err;
	d->done = true;
	d->event(d->event_arg, err);
	return NULL;
}

struct dest *dest_start(const struct dest_params *p, dest_event_fn event, void *arg)
{
	struct dest *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->p = *p;
	if (!d->p.reconnect_ms)
		d->p.reconnect_ms = DEST_RECONNECT_WAIT_MS;
	d->event = event;
	d->event_arg = arg;
	link_init(&d->link, p->tls);
	pthread_mutex_init(&d->ulock, NULL);
	pthread_mutex_init(&d->why_lock, NULL);
	d->doorman_quit = eventfd(0, EFD_CLOEXEC);
	if (d->doorman_quit < 0 || pthread_create(&d->thread, NULL, dest_thread, d)) {
		if (d->doorman_quit >= 0)
			close(d->doorman_quit);
		pthread_mutex_destroy(&d->why_lock);
		pthread_mutex_destroy(&d->ulock);
		free(d);
		return NULL;
	}
	d->thread_started = true;
	return d;
}

uint64_t dest_missing(struct dest *d)
{
	uint64_t placed;

	if (!d->postcopy)
		return 0;
	pthread_mutex_lock(&d->fault.lock);
	placed = d->fault.needed_placed;
	pthread_mutex_unlock(&d->fault.lock);
	return d->fault.nr_needed - placed;
}

/* Log the pages the guest here still waits for, if any. */
static void say_missing(struct dest *d)
{
	uint64_t missing = dest_missing(d);
	char which[192];

	if (!missing)
		return;
	dest_postcopy_missing(d, which, sizeof(which));
	hm_err("shutting down with %llu pages of the guest still on the source (guest page frames "
	       "%s%s): the guest here cannot continue; the source keeps them (fenced)",
	       (unsigned long long)missing, which, missing > 8 ? ", ..." : "");
}

void dest_abandon(struct dest *d)
{
	if (!d || !dest_missing(d))
		return;
	say_missing(d);
	d->abandoned = true;
	dest_postcopy_release(d);
}

void dest_free(struct dest *d)
{
	if (!d)
		return;
	__atomic_store_n(&d->stopping, true, __ATOMIC_RELEASE);
	/* a guest that never ran here may have a thread waiting on a page: free it */
	if (!d->running)
		dest_postcopy_unblock(d);
	/* a post-copy still receiving must not hold the exit up */
	dest_cut(d);
	if (d->thread_started)
		pthread_join(d->thread, NULL);
	doorman_stop(d);
	if (!d->abandoned)
		say_missing(d);
	dest_postcopy_exit(d);
	bitmap_exit(&d->written);
	link_close(&d->link);
	if (!d->running)
		vm_free(d->vm);
	close(d->doorman_quit);
	pthread_mutex_destroy(&d->why_lock);
	pthread_mutex_destroy(&d->ulock);
	free(d);
}
