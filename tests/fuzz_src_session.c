// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a real migration source (src/mig.h) talking to a
 * fake destination.
 *
 * Once per process: a running VM with the idle guest (16 MiB, 1 vCPU) and
 * a listening socket on 127.0.0.1. Each input: mig_start (plain TCP,
 * reconnect window 100 ms) to that port; the fake destination accepts the
 * bulk connection, reads the source's hello and echoes it, does the same
 * for the urgent one, then writes the input's frames (tests/fuzz_session.h;
 * REQ frames go on the urgent connection) while it reads and checks
 * everything the source sends, until the source closes the link. A marker
 * breaks the link; the source's reconnection (HELLO_RESUME, same secret)
 * then gets the next frames. A reconnection with no frames left is
 * refused as a destination that lost the session would (ENOENT). All of
 * it ends with the migration's done callback.
 *
 * Invariants, abort() when broken:
 *   - GO leaves the source only while the VM is fenced, after READY;
 *   - failed and not fenced: the VM runs here again (VM_RUNNING);
 *   - fenced: the VM stays paused (VM_FENCED), and only after READY;
 *   - success: fenced, READY and STARTED (or STATUS) were sent;
 *   - every frame the source sends decodes, pages below the guest's end.
 * A fenced VM is unfenced and resumed for the next input; after a success
 * the VM is treated as gone and a new one is built.
 *
 * Option byte 0: bits 0-1 the mode (pre-copy, post-copy, hybrid, hybrid
 * switching after 1 + byte 1 % 3 rounds), bit 2 the first piece is sent
 * raw as the answer to the bulk hello, bit 3 no reconnection window, bit 4
 * an unreachable downtime limit with a 5 ms pre-copy timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include "src/guest.h"
#include "src/mig.h"
#include "src/vm.h"
#include "tests/fuzz_session.h"

#define OPT_MODE      0x3
#define OPT_RAW_HELLO 0x4
#define OPT_NO_RECON  0x8
#define OPT_NO_CONV   0x10
#define GUEST_SPEC    "idle"
#define GUEST_MEM     (16ULL << 20)
#define RECONNECT_NS  (100 * NSEC_PER_MSEC)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_src {
	struct vm *vm;
	int lfd;
	uint16_t port;
	int done_fd; /* readable: the migration's done callback ran */
	/* per input */
	struct fz_input in;
	unsigned int conns; /* bulk connections taken so far */
	unsigned int seg;   /* next segment to play */
	uint8_t secret[PROTO_SECRET_SIZE];
};

static struct fuzz_src fs_g;

static struct vm *make_vm(void)
{
	struct vm_config cfg = { 0 };
	struct guest_spec spec;
	struct vm *vm = NULL;
	char why[256];

	fz_check(!guest_spec_parse(GUEST_SPEC, &spec, why, sizeof(why)));
	fz_check(!guest_layout(&spec, GUEST_MEM, 1, &cfg.boot, why, sizeof(why)));
	cfg.mem_bytes = GUEST_MEM;
	cfg.nr_vcpus = 1;
	cfg.image = spec.type->image;
	cfg.image_size = (size_t)(spec.type->image_end - spec.type->image);
	if (vm_new(&cfg, &vm, why, sizeof(why))) {
		fprintf(stderr, "fuzz_src_session: cannot build the VM: %s\n", why);
		abort();
	}
	fz_check(!vm_start(vm));
	return vm;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_process_init();
	fs_g.vm = make_vm();
	fs_g.lfd = fz_listen(&fs_g.port);
	fs_g.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fz_check(fs_g.done_fd >= 0);
	return 0;
}

static void on_done(void *arg)
{
	struct fuzz_src *f = arg;

	fz_event_set(f->done_fd);
}

static void on_frame(void *arg, struct fz_conn *c, const struct proto_hdr *h, const uint8_t *p)
{
	struct fuzz_src *f = arg;

	switch (h->type) {
	case PROTO_GO:
		/* the destination may run the guest from here: this copy must never run */
		fz_check(vm_get_state(f->vm) == VM_FENCED);
		fz_check(fz_input_sent(&f->in, PROTO_CH_BULK, PROTO_READY));
		break;
	case PROTO_VMDESC:
	case PROTO_PAGES:
	case PROTO_ROUND:
	case PROTO_VMSTATE:
	case PROTO_SWITCH:
	case PROTO_PAGEMAP:
	case PROTO_DONE:
	case PROTO_ERROR:
		break;
	default:
		/* the rest is the destination's to send */
		fz_fail("the source sent a destination's frame", __FILE__, __LINE__);
	}
	if (c->ch == PROTO_CH_URGENT)
		fz_check(h->type == PROTO_PAGES);
}

static int accept_one(struct fuzz_src *f)
{
	int fd;

	if (fz_wait(f->lfd, f->done_fd) != 1)
		return -1;
	fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	fz_check(fd >= 0);
	return fd;
}

/* The source's hello on a fresh connection: well formed, this session's. */
static bool read_hello(struct fuzz_src *f, int fd, uint32_t channel)
{
	uint8_t buf[PROTO_HELLO_SIZE];
	struct proto_hello hm;
	struct proto_hdr h;

	if (fz_read_frame(fd, f->done_fd, &h, buf, sizeof(buf)))
		return false;
	fz_check(h.type == PROTO_HELLO);
	fz_check(!proto_hello_decode(buf, (size_t)h.len, &hm, NULL) && hm.channel == channel);
	fz_check(!!(hm.flags & PROTO_HELLO_RESUME) == (f->conns > 1));
	if (f->conns == 1 && channel == PROTO_CH_BULK)
		memcpy(f->secret, hm.secret, sizeof(f->secret));
	fz_check(!memcmp(hm.secret, f->secret, sizeof(f->secret)));
	return true;
}

static int echo_hello(struct fuzz_src *f, int fd, uint32_t channel)
{
	struct proto_hello hm = { .magic = PROTO_MAGIC,
				  .version = PROTO_VERSION,
				  .channel = channel };
	uint8_t buf[PROTO_HELLO_SIZE];

	memcpy(hm.secret, f->secret, sizeof(hm.secret));
	proto_hello_encode(buf, &hm);
	return fz_send_frame(fd, PROTO_HELLO, 0, buf, sizeof(buf));
}

/* Answer the bulk hello: echo, or the input's first piece, or ENOENT with no frames left. */
static bool answer_bulk(struct fuzz_src *f, int fd)
{
	const struct fz_input *in = &f->in;
	uint8_t err[PROTO_ERROR_SIZE];

	if (f->seg >= in->nseg) {
		proto_error_encode(err, ENOENT, "no such migration session here");
		(void)fz_send_frame(fd, PROTO_ERROR, 0, err, sizeof(err));
		return false;
	}
	if (f->conns == 1 && (in->opt[0] & OPT_RAW_HELLO) && in->has_first)
		return !fz_send_frame(fd, in->first.type & ~FZ_URGENT_BIT, in->first.flags,
				      in->first_payload, (size_t)in->first.len);
	return !echo_hello(f, fd, PROTO_CH_BULK);
}

/* Take one link from the source; false when the migration ended instead. */
static bool take_link(struct fuzz_src *f, struct fz_conn *bulk, struct fz_conn *urgent)
{
	uint64_t pages = f->vm->mem.pages;
	int fd = accept_one(f);

	if (fd < 0)
		return false;
	f->conns++;
	fz_conn_init(bulk, fd, PROTO_CH_BULK, pages);
	if (!read_hello(f, fd, PROTO_CH_BULK) || !answer_bulk(f, fd))
		return true; /* refused or gone: wait for what the source does next */
	fd = accept_one(f);
	if (fd < 0)
		return false;
	fz_conn_init(urgent, fd, PROTO_CH_URGENT, pages);
	if (!read_hello(f, fd, PROTO_CH_URGENT) || echo_hello(f, fd, PROTO_CH_URGENT))
		return true;
	bulk->out = &f->in.out[f->seg][PROTO_CH_BULK];
	urgent->out = &f->in.out[f->seg][PROTO_CH_URGENT];
	f->seg++;
	return true;
}

/* Serve links until the migration is over. */
static void serve(struct fuzz_src *f)
{
	for (;;) {
		struct fz_conn bulk = { .fd = -1 };
		struct fz_conn urgent = { .fd = -1 };
		struct fz_pump p = { { &bulk, &urgent }, on_frame, NULL, f };
		bool more = take_link(f, &bulk, &urgent);

		if (more && bulk.out)
			fz_pump_run(&p);
		fz_conn_close(&urgent);
		fz_conn_close(&bulk);
		if (!more)
			return;
	}
}

static void params(struct fuzz_src *f, struct mig_params *p)
{
	const uint8_t *opt = f->in.opt;

	memset(p, 0, sizeof(*p));
	snprintf(p->to, sizeof(p->to), "127.0.0.1:%u", f->port);
	snprintf(p->spec, sizeof(p->spec), "%s", GUEST_SPEC);
	p->insecure = true;
	p->mode = (opt[0] & OPT_MODE) == 3 ? MIG_HYBRID : (enum mig_mode)(opt[0] & OPT_MODE);
	if ((opt[0] & OPT_MODE) == 3)
		p->postcopy_after_rounds = 1 + opt[1] % 3;
	p->reconnect_ns = opt[0] & OPT_NO_RECON ? 0 : RECONNECT_NS;
	p->downtime_limit_ns = opt[0] & OPT_NO_CONV ? 1 : 300 * NSEC_PER_MSEC;
	p->timeout_ns = opt[0] & OPT_NO_CONV ? 5 * NSEC_PER_MSEC : 0;
}

/* After the done callback: the VM is where the outcome says it must be. */
static void check_end(struct fuzz_src *f, const struct mig_stats *s)
{
	enum vm_state st = vm_get_state(f->vm);
	bool ready = fz_input_sent(&f->in, PROTO_CH_BULK, PROTO_READY);

	fz_check(!s->fenced || ready);
	if (!s->err) {
		fz_check(s->fenced && st == VM_FENCED);
		fz_check(fz_input_sent(&f->in, PROTO_CH_BULK, PROTO_STARTED) ||
			 fz_input_sent(&f->in, PROTO_CH_BULK, PROTO_STATUS));
	} else if (!s->fenced) {
		fz_check(st == VM_RUNNING); /* given back */
	} else {
		fz_check(st == VM_FENCED);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_src *f = &fs_g;
	struct mig_params p;
	struct mig_stats s;
	char why[256];
	struct mig *m;

	fz_input_parse(&f->in, data, size, OPT_RAW_HELLO);
	f->conns = 0;
	f->seg = 0;
	params(f, &p);
	m = mig_start(f->vm, &p, on_done, f, why, sizeof(why));
	fz_check(m != NULL);
	serve(f);
	fz_check(fz_wait(f->done_fd, -1) == 1);
	mig_snapshot(m, &s);
	check_end(f, &s);
	mig_free(m);
	if (!s.err) {
		/* migrated away: this copy is gone */
		vm_free(f->vm);
		f->vm = make_vm();
	} else if (s.fenced) {
		vm_unfence(f->vm);
		fz_check(!vm_resume(f->vm));
	}
	fz_event_clear(f->done_fd);
	fz_input_free(&f->in);
	return 0;
}
