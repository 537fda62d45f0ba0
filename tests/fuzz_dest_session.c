// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a real destination (src/dest.h) fed by a fake source.
 *
 * Once per process: a listening socket on 127.0.0.1 (any port). Each
 * input: dest_start on it with plain TCP (dest_params.tls = NULL), then
 * the fake source connects the bulk channel (hello), then the urgent one
 * (hello), as link.c expects, and writes the input's frames
 * (tests/fuzz_session.h) while it reads and checks every frame the
 * destination sends, until the destination closes the bulk connection. A
 * marker in the input breaks the link: the source reconnects with the
 * session's secret and HELLO_RESUME and goes on with the next frames.
 * Then dest_free, and the VM if the destination handed it over.
 *
 * A valid VMDESC makes the destination build a real KVM VM, at most
 * 64 MiB (dest_params.max_mem). Invariants, abort() when broken:
 *   - the guest runs (event err 0, d->running, phase RUNNING) only after
 *     a GO frame was sent; STARTED only after GO; READY only after SWITCH;
 *   - COMPLETE only when no page is missing (dest_missing);
 *   - every frame the destination sends decodes (fuzz_session.c);
 *   - the destination ends (dest_free returns), and leaks nothing.
 *
 * Option byte 0: bit 0 the first piece is sent raw as the bulk hello,
 * bit 1 the bulk hello asks to resume a session (the destination has
 * none), bit 2 the urgent hello carries a wrong secret.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include "src/dest.h"
#include "src/vm.h"
#include "tests/fuzz_session.h"

#define OPT_RAW_HELLO	0x1
#define OPT_RESUME	0x2
#define OPT_BAD_SECRET	0x4
#define DEST_MAX_MEM	(64ULL << 20)
#define RECONNECT_MS	1000 /* only waited when the input reconnects: stop_fd ends it */
#define WAIT_MS		5000
#define UNKNOWN_MAX_GFN (DEST_MAX_MEM / PROTO_PAGE_SIZE)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_dest {
	int lfd;
	uint16_t port;
	int stop_fd; /* readable: no more sources come (dest_params.stop_fd) */
	int done_fd; /* readable: the destination's final event */
	/* per input */
	struct fz_input in;
	uint64_t max_gfn;
	uint8_t secret[PROTO_SECRET_SIZE];
	bool go_sent; /* atomic: a GO header went to the socket */
	bool ran;     /* the destination said the guest runs */
	unsigned int seg;
	struct dest *d;
};

static struct fuzz_dest fd_g;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_process_init();
	fd_g.lfd = fz_listen(&fd_g.port);
	fd_g.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fd_g.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fz_check(fd_g.stop_fd >= 0 && fd_g.done_fd >= 0);
	return 0;
}

/* From the destination's thread: once when the guest runs here, once at the end. */
static void on_event(void *arg, int err)
{
	struct fuzz_dest *f = arg;

	if (!err && !f->ran) {
		/* the one rule that keeps a guest from running twice */
		fz_check(__atomic_load_n(&f->go_sent, __ATOMIC_ACQUIRE));
		f->ran = true;
		return;
	}
	fz_event_set(f->done_fd);
}

static void before_write(void *arg, struct fz_conn *c, size_t from, size_t to)
{
	struct fuzz_dest *f = arg;

	if (c->ch == PROTO_CH_BULK && fz_out_find(c->out, PROTO_GO, from, to) >= 0)
		__atomic_store_n(&f->go_sent, true, __ATOMIC_RELEASE);
}

static void on_frame(void *arg, struct fz_conn *c, const struct proto_hdr *h, const uint8_t *p)
{
	struct fuzz_dest *f = arg;

	if (h->type == PROTO_STARTED)
		fz_check(fz_input_sent(&f->in, PROTO_CH_BULK, PROTO_GO));
	if (h->type == PROTO_READY)
		fz_check(fz_input_sent(&f->in, PROTO_CH_BULK, PROTO_SWITCH));
	/* COMPLETE tells the source it may forget the guest: every page must be here */
	if (h->type == PROTO_COMPLETE)
		fz_check(dest_missing(f->d) == 0);
	/* the source only ever asks; the destination only answers hellos and requests */
	fz_check(h->type != PROTO_GO && h->type != PROTO_SWITCH && h->type != PROTO_VMSTATE);
}

/* The guest's page count from the first VMDESC we send (to check the pages it asks for). */
static uint64_t vm_pages(const struct fz_input *in)
{
	const struct fz_out *o = &in->out[0][PROTO_CH_BULK];
	struct proto_vmdesc m;
	long at = fz_out_find(o, PROTO_VMDESC, 0, o->len);

	if (at < 0 || (size_t)at + PROTO_HDR_SIZE + PROTO_VMDESC_SIZE > o->len ||
	    proto_vmdesc_decode(o->buf + at + PROTO_HDR_SIZE, PROTO_VMDESC_SIZE, &m, NULL) ||
	    m.mem_bytes > DEST_MAX_MEM)
		return UNKNOWN_MAX_GFN;
	return m.mem_bytes / PROTO_PAGE_SIZE;
}

static int send_hello(struct fuzz_dest *f, int fd, uint32_t channel, uint32_t flags)
{
	struct proto_hello hm = {
		.magic = PROTO_MAGIC, .version = PROTO_VERSION, .channel = channel, .flags = flags
	};
	uint8_t buf[PROTO_HELLO_SIZE];

	memcpy(hm.secret, f->secret, sizeof(hm.secret));
	if (channel == PROTO_CH_URGENT && (f->in.opt[0] & OPT_BAD_SECRET))
		hm.secret[0] ^= 0x5a;
	proto_hello_encode(buf, &hm);
	return fz_send_frame(fd, PROTO_HELLO, 0, buf, sizeof(buf));
}

/* The destination's answer to a hello: its own hello echoing our secret, or a refusal. */
static bool hello_answered(struct fuzz_dest *f, int fd, uint32_t channel)
{
	uint8_t buf[PROTO_ERROR_SIZE];
	struct proto_hello hm;
	struct proto_hdr h;

	if (fz_read_frame(fd, f->done_fd, &h, buf, sizeof(buf)))
		return false;
	fz_check_frame(&h, buf, f->max_gfn);
	if (h.type != PROTO_HELLO)
		return false; /* ERROR: busy, no such session */
	fz_check(!proto_hello_decode(buf, (size_t)h.len, &hm, NULL));
	fz_check(hm.channel == channel && !memcmp(hm.secret, f->secret, sizeof(f->secret)));
	return true;
}

static bool open_bulk(struct fuzz_dest *f, int fd)
{
	const struct fz_input *in = &f->in;
	uint32_t flags = f->seg || (in->opt[0] & OPT_RESUME) ? PROTO_HELLO_RESUME : 0;
	int err;

	if (!f->seg && (in->opt[0] & OPT_RAW_HELLO) && in->has_first) {
		/* a raw hello echoes back the secret it carried, if any */
		if (in->first.len >= 40)
			memcpy(f->secret, in->first_payload + 24, sizeof(f->secret));
		err = fz_send_frame(fd, in->first.type & ~FZ_URGENT_BIT, in->first.flags,
				    in->first_payload, (size_t)in->first.len);
	} else {
		err = send_hello(f, fd, PROTO_CH_BULK, flags);
	}
	return !err && hello_answered(f, fd, PROTO_CH_BULK);
}

/* Both connections of one segment, as link_connect opens them. */
static bool open_link(struct fuzz_dest *f, struct fz_conn *bulk, struct fz_conn *urgent)
{
	int b = fz_connect(f->port);
	int u;

	if (b < 0)
		return false;
	fz_conn_init(bulk, b, PROTO_CH_BULK, f->max_gfn);
	if (!open_bulk(f, b))
		return false;
	u = fz_connect(f->port);
	if (u < 0)
		return false;
	fz_conn_init(urgent, u, PROTO_CH_URGENT, f->max_gfn);
	return !send_hello(f, u, PROTO_CH_URGENT, f->seg ? PROTO_HELLO_RESUME : 0) &&
	       hello_answered(f, u, PROTO_CH_URGENT);
}

/* One segment: connect, write its frames, read until the destination closes the bulk link. */
static bool run_segment(struct fuzz_dest *f)
{
	struct fz_conn bulk = { .fd = -1 };
	struct fz_conn urgent = { .fd = -1 };
	struct fz_pump p = { { &bulk, &urgent }, on_frame, before_write, f };
	bool ok = open_link(f, &bulk, &urgent);

	if (ok) {
		/* no source comes after the last one: a reconnection wait ends at once */
		if (f->seg + 1 == f->in.nseg)
			fz_event_set(f->stop_fd);
		bulk.out = &f->in.out[f->seg][PROTO_CH_BULK];
		urgent.out = &f->in.out[f->seg][PROTO_CH_URGENT];
		fz_pump_run(&p);
	}
	fz_conn_close(&urgent);
	fz_conn_close(&bulk);
	return ok;
}

/* After the final event: what the destination did must match what it was sent. */
static void check_end(struct fuzz_dest *f, struct dest *d)
{
	bool go = fz_input_sent(&f->in, PROTO_CH_BULK, PROTO_GO);

	fz_check(d->done);
	fz_check(!d->running || go);
	fz_check(d->phase != PROTO_DST_RUNNING || go);
	fz_check(d->running == f->ran);
	fz_check(d->err || d->running);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dest_params dp = { .listen_fd = fd_g.lfd,
				  .stop_fd = fd_g.stop_fd,
				  .max_mem = DEST_MAX_MEM,
				  .tls = NULL,
				  .wait_ms = WAIT_MS,
				  .reconnect_ms = RECONNECT_MS };
	struct fuzz_dest *f = &fd_g;
	struct vm *vm = NULL;
	struct dest *d;

	fz_input_parse(&f->in, data, size, OPT_RAW_HELLO);
	f->max_gfn = vm_pages(&f->in);
	memset(f->secret, 0xa5, sizeof(f->secret));
	f->secret[0] = f->in.opt[1];
	f->go_sent = false;
	f->ran = false;
	d = dest_start(&dp, on_event, f);
	fz_check(d != NULL);
	f->d = d;
	for (f->seg = 0; f->seg < f->in.nseg; f->seg++)
		if (!run_segment(f))
			break;
	fz_event_set(f->stop_fd);
	fz_check(fz_wait(f->done_fd, -1) == 1);
	check_end(f, d);
	if (d->running)
		vm = d->vm; /* handed over: ours to free */
	dest_free(d);
	vm_free(vm);
	fz_event_clear(f->stop_fd);
	fz_event_clear(f->done_fd);
	fz_input_free(&f->in);
	return 0;
}
