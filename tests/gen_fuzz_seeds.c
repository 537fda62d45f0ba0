// SPDX-License-Identifier: MIT
/*
 * Writes the committed seed inputs of the fuzz targets into
 * DIR/<target>/ (DIR defaults to tests/fuzz-corpus). Run by hand after a
 * protocol change, then commit the files:
 *   make fuzz-seeds
 * It builds a real VM (/dev/kvm) once to take a genuine VMSTATE, so the
 * destination seeds carry a state that the destination really loads.
 *
 *   fuzz_proto         every frame type's valid frame (stream mode), each
 *                      decoder on its own (direct mode), page batches raw,
 *                      lz4 and full, a whole session, a bare lz4 block
 *   fuzz_dest_session  pre-copy and post-copy sessions that run the guest,
 *                      sessions that reconnect, refusals, bad hellos
 *   fuzz_src_session   the destination's side of the same: pre-copy,
 *                      post-copy with REQ on the urgent channel, hybrid,
 *                      refusals, failures after READY, reconnections
 * Input formats: the comments at the top of each target.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "src/compress.h"
#include "src/guest.h"
#include "src/proto.h"
#include "src/vcpu.h"
#include "src/vm.h"
#include "src/vmstate.h"
#include "tests/fuzz_session.h"

#define GUEST_MEM   (16ULL << 20)
#define GUEST_PAGES (GUEST_MEM / PROTO_PAGE_SIZE)
#define URGENT	    FZ_URGENT_BIT

static uint8_t stream[1 << 20];
static size_t used;
static const char *outdir;

/* A real VM state: the idle guest, paused, saved as the source sends it. */
static uint8_t state[PROTO_VMSTATE_MAX];
static size_t state_len;

static void put(const void *p, size_t len)
{
	if (used + len > sizeof(stream))
		abort();
	memcpy(stream + used, p, len);
	used += len;
}

static void frame(uint32_t type, uint32_t flags, const void *payload, size_t len)
{
	uint8_t hdr[PROTO_HDR_SIZE];

	proto_hdr_encode(hdr, type, flags, len);
	put(hdr, sizeof(hdr));
	put(payload, len);
}

/* Session fuzzers: the link breaks here and the source reconnects. */
static void marker(void)
{
	frame(FZ_MARKER, 0, NULL, 0);
}

static void save(const char *target, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(stream, 1, used, f) != used || fclose(f)) {
		perror(path);
		exit(1);
	}
	used = 0;
}

/* ---- frames ---- */

static void hello(uint32_t channel, uint32_t flags)
{
	struct proto_hello m = {
		.magic = PROTO_MAGIC, .version = PROTO_VERSION, .channel = channel, .flags = flags
	};
	uint8_t buf[PROTO_HELLO_SIZE];

	memset(m.secret, 0xa5, sizeof(m.secret));
	proto_hello_encode(buf, &m);
	frame(PROTO_HELLO, 0, buf, sizeof(buf));
}

static void vmdesc_spec(uint64_t mem, uint32_t vcpus, uint32_t cpuid_all, const char *spec)
{
	struct proto_vmdesc m = { .mem_bytes = mem, .nr_vcpus = vcpus, .xsave_size = 4096 };
	uint8_t buf[PROTO_VMDESC_SIZE];

	for (int i = 0; i < PROTO_CPUID_WORDS; i++)
		m.cpuid[i] = cpuid_all;
	m.resident_bytes = 2 << 20;
	snprintf(m.spec, sizeof(m.spec), "%s", spec);
	proto_vmdesc_encode(buf, &m);
	frame(PROTO_VMDESC, 0, buf, sizeof(buf));
}

static void vmdesc(uint64_t mem, uint32_t cpuid_all)
{
	vmdesc_spec(mem, 1, cpuid_all, "idle");
}

static void error(uint32_t type, uint32_t code, const char *msg)
{
	uint8_t buf[PROTO_ERROR_SIZE];

	proto_error_encode(buf, code, msg);
	frame(type, 0, buf, sizeof(buf));
}

static void round_info(uint32_t round)
{
	const struct proto_round r = { .round = round, .pages = 300, .dirty_rate = 100 };
	uint8_t buf[PROTO_ROUND_SIZE];

	proto_round_encode(buf, &r);
	frame(PROTO_ROUND, 0, buf, sizeof(buf));
}

static void ready(void)
{
	const struct proto_ready r = { .restore_ns = 150000 };
	uint8_t buf[PROTO_READY_SIZE];

	proto_ready_encode(buf, &r);
	frame(PROTO_READY, 0, buf, sizeof(buf));
}

static void started(void)
{
	const struct proto_started s = { .switch_to_run_ns = 400000, .restore_ns = 150000 };
	uint8_t buf[PROTO_STARTED_SIZE];

	proto_started_encode(buf, &s);
	frame(PROTO_STARTED, 0, buf, sizeof(buf));
}

static void after(void)
{
	const struct proto_after a = { .units_per_s = 1000, .first_report_ns = 2000000 };
	uint8_t buf[PROTO_AFTER_SIZE];

	proto_after_encode(buf, &a);
	frame(PROTO_AFTER, 0, buf, sizeof(buf));
}

static void status(uint32_t phase, uint64_t missing)
{
	const struct proto_status s = { .phase = phase, .missing = missing };
	uint8_t buf[PROTO_STATUS_SIZE];

	proto_status_encode(buf, &s);
	frame(PROTO_STATUS, 0, buf, sizeof(buf));
}

static void complete(void)
{
	const struct proto_complete c = { .remote_faults = 2, .lat_p50_us = 60, .lat_max_us = 90 };
	uint8_t buf[PROTO_COMPLETE_SIZE];

	proto_complete_encode(buf, &c);
	frame(PROTO_COMPLETE, 0, buf, sizeof(buf));
}

static void req(uint32_t chbit, uint64_t gfn)
{
	uint8_t buf[PROTO_REQ_SIZE];

	proto_req_encode(buf, gfn);
	frame(PROTO_REQ | chbit, 0, buf, sizeof(buf));
}

/* A run of @nbits pages from @first, every page set. */
static void pagemap(uint64_t first, uint32_t nbits)
{
	static uint8_t buf[PROTO_PAGEMAP_HDR + PROTO_PAGEMAP_MAX_BITS / 8];

	proto_pagemap_encode_head(buf, first, nbits);
	memset(buf + PROTO_PAGEMAP_HDR, 0xff, nbits / 8);
	frame(PROTO_PAGEMAP, 0, buf, PROTO_PAGEMAP_HDR + nbits / 8);
}

/* Zero pages @first.. (@n of them, at most a batch), plus one data page at @data_gfn if not 0. */
static void pages_zero(uint32_t chbit, uint64_t first, uint32_t n, uint64_t data_gfn)
{
	static uint8_t buf[PROTO_MAX_PAYLOAD];
	uint64_t gfns[PROTO_BATCH_MAX];
	uint32_t count = 0;
	size_t head;

	if (data_gfn)
		gfns[count++] = data_gfn;
	for (uint32_t i = 0; i < n && count < PROTO_BATCH_MAX; i++)
		gfns[count++] = (first + i) | PROTO_ZERO_PAGE;
	head = proto_pages_encode_head(buf, gfns, count, 0, data_gfn ? PROTO_PAGE_SIZE : 0);
	for (size_t i = 0; data_gfn && i < PROTO_PAGE_SIZE; i++)
		buf[head + i] = (uint8_t)(i * 31);
	frame(PROTO_PAGES | chbit, 0, buf, head + (data_gfn ? PROTO_PAGE_SIZE : 0));
}

/* @n patterned pages from @first, lz4 (with a zero page in the middle when @zero). */
static void pages_lz4(uint64_t first, uint32_t n, bool zero)
{
	static uint8_t raw[PROTO_BATCH_MAX * PROTO_PAGE_SIZE], buf[PROTO_MAX_PAYLOAD];
	static struct compress c;
	uint64_t gfns[PROTO_BATCH_MAX];
	uint32_t count = 0;
	size_t head;
	size_t len;

	for (uint32_t i = 0; i < n; i++)
		gfns[count++] = first + i;
	if (zero && count < PROTO_BATCH_MAX)
		gfns[count++] = (first + n) | PROTO_ZERO_PAGE;
	for (size_t i = 0; i < (size_t)n * PROTO_PAGE_SIZE; i++)
		raw[i] = (uint8_t) "hybridmig"[i % 9] + (uint8_t)(i / PROTO_PAGE_SIZE);
	head = proto_pages_head_size(count);
	len = compress_batch(&c, raw, (size_t)n * PROTO_PAGE_SIZE, buf + head, sizeof(buf) - head);
	if (!len)
		abort();
	proto_pages_encode_head(buf, gfns, count, PROTO_PAGES_LZ4, (uint32_t)len);
	frame(PROTO_PAGES, PROTO_PAGES_LZ4, buf, head + len);
}

static void vmstate(void)
{
	frame(PROTO_VMSTATE, 0, state, state_len);
}

/* Only the end record: the destination keeps the entry state vm_new gave it. */
static void vmstate_end_only(void)
{
	uint8_t buf[VMSTATE_REC_HDR];
	struct vmstate_buf b;

	vmstate_init(&b, buf, sizeof(buf));
	vmstate_put(&b, VS_END, VMSTATE_VM_CPU, NULL, 0);
	frame(PROTO_VMSTATE, 0, buf, b.len);
}

/* ---- the real state ---- */

static void take_state(void)
{
	struct vmstate_devices dev = { 0 };
	struct vm_config cfg = { 0 };
	struct guest_spec spec;
	struct vmstate_buf b;
	struct vm *vm;
	char why[256] = "";

	if (guest_spec_parse("idle", &spec, why, sizeof(why)) ||
	    guest_layout(&spec, GUEST_MEM, 1, &cfg.boot, why, sizeof(why)))
		goto fail;
	cfg.mem_bytes = GUEST_MEM;
	cfg.nr_vcpus = 1;
	cfg.image = spec.type->image;
	cfg.image_size = (size_t)(spec.type->image_end - spec.type->image);
	if (vcpu_signal_setup() || vm_new(&cfg, &vm, why, sizeof(why)))
		goto fail;
	vmstate_init(&b, state, sizeof(state));
	if (vm_start(vm) || vm_pause(vm) || vm_arch_save(vm, &b, why, sizeof(why)))
		goto fail;
	vmstate_put(&b, VS_DEVICES, VMSTATE_VM_CPU, &dev, sizeof(dev));
	vmstate_put(&b, VS_END, VMSTATE_VM_CPU, NULL, 0);
	if (b.overflow)
		goto fail;
	state_len = b.len;
	vm_free(vm);
	return;
fail:
	fprintf(stderr, "gen_fuzz_seeds: cannot take a VM state: %s\n", why);
	exit(1);
}

/* ---- fuzz_proto ---- */

/* Stream mode: byte 0 even, bytes 1-2 give max_gfn = 1 + v % 4096 (here 4096). */
static void proto_stream(void)
{
	const uint8_t head[3] = { 0, 0xff, 0x0f };

	put(head, sizeof(head));
}

/* Direct mode: one payload of @type, with max_gfn 4096. */
static void proto_direct(const char *name, uint32_t type, void (*build)(void))
{
	const uint8_t head[4] = { 1, (uint8_t)type, 0xff, 0x0f };
	size_t at;

	put(head, sizeof(head));
	at = used;
	build();
	/* drop the frame header: the payload alone */
	memmove(stream + at, stream + at + PROTO_HDR_SIZE, used - at - PROTO_HDR_SIZE);
	used -= PROTO_HDR_SIZE;
	save("fuzz_proto", name);
}

static void b_hello(void)
{
	hello(PROTO_CH_BULK, 0);
}
static void b_vmdesc(void)
{
	vmdesc(GUEST_MEM, 0);
}
static void b_error(void)
{
	error(PROTO_ERROR, EBUSY, "busy: seed");
}
static void b_round(void)
{
	round_info(1);
}
static void b_req(void)
{
	req(0, 4095);
}
static void b_pagemap(void)
{
	pagemap(1024, 128);
}
static void b_pages(void)
{
	pages_lz4(4000, 3, true);
}
static void b_status(void)
{
	status(PROTO_DST_WAIT_GO, 12);
}

static void proto_seeds(void)
{
	static const struct {
		const char *name;
		uint32_t type;
		void (*build)(void);
	} direct[] = {
		{ "direct-hello", PROTO_HELLO, b_hello },
		{ "direct-vmdesc", PROTO_VMDESC, b_vmdesc },
		{ "direct-error", PROTO_ERROR, b_error },
		{ "direct-round", PROTO_ROUND, b_round },
		{ "direct-started", PROTO_STARTED, started },
		{ "direct-after", PROTO_AFTER, after },
		{ "direct-ready", PROTO_READY, ready },
		{ "direct-status", PROTO_STATUS, b_status },
		{ "direct-req", PROTO_REQ, b_req },
		{ "direct-complete", PROTO_COMPLETE, complete },
		{ "direct-pagemap", PROTO_PAGEMAP, b_pagemap },
		{ "direct-pages", PROTO_PAGES, b_pages },
		{ "direct-vmstate", PROTO_VMSTATE, vmstate },
	};
	const uint8_t lz4_head[4] = { 1, 0xff, 0, 0 };
	uint8_t size[4];

	for (size_t i = 0; i < ARRAY_SIZE(direct); i++)
		proto_direct(direct[i].name, direct[i].type, direct[i].build);
	/* one file per frame type, stream mode */
	proto_stream();
	b_hello();
	save("fuzz_proto", "hello");
	proto_stream();
	b_vmdesc();
	save("fuzz_proto", "vmdesc");
	proto_stream();
	frame(PROTO_ACCEPT, 0, NULL, 0);
	save("fuzz_proto", "accept");
	proto_stream();
	error(PROTO_REFUSE, ENOMEM, "too big");
	save("fuzz_proto", "refuse");
	proto_stream();
	pages_zero(0, 6, 1, 5);
	save("fuzz_proto", "pages-raw");
	proto_stream();
	pages_lz4(0, 4, true);
	save("fuzz_proto", "pages-lz4");
	proto_stream();
	pages_lz4(4095 - 63, 63, true);
	save("fuzz_proto", "pages-lz4-full");
	proto_stream();
	b_round();
	save("fuzz_proto", "round");
	proto_stream();
	vmstate();
	save("fuzz_proto", "vmstate");
	proto_stream();
	frame(PROTO_SWITCH, PROTO_SWITCH_POSTCOPY, NULL, 0);
	save("fuzz_proto", "switch");
	proto_stream();
	started();
	save("fuzz_proto", "started");
	proto_stream();
	after();
	save("fuzz_proto", "after");
	proto_stream();
	b_error();
	save("fuzz_proto", "error");
	proto_stream();
	b_req();
	save("fuzz_proto", "req");
	proto_stream();
	pagemap(0, 4096);
	save("fuzz_proto", "pagemap");
	proto_stream();
	frame(PROTO_DONE, 0, NULL, 0);
	save("fuzz_proto", "done");
	proto_stream();
	complete();
	save("fuzz_proto", "complete");
	proto_stream();
	ready();
	save("fuzz_proto", "ready");
	proto_stream();
	frame(PROTO_GO, 0, NULL, 0);
	save("fuzz_proto", "go");
	proto_stream();
	status(PROTO_DST_RUNNING, 0);
	save("fuzz_proto", "status");
	/* a whole post-copy session, both directions in one stream */
	proto_stream();
	b_hello();
	b_vmdesc();
	frame(PROTO_ACCEPT, 0, NULL, 0);
	pages_lz4(1024, 8, true);
	b_round();
	pagemap(2048, 64);
	vmstate();
	frame(PROTO_SWITCH, PROTO_SWITCH_POSTCOPY, NULL, 0);
	ready();
	frame(PROTO_GO, 0, NULL, 0);
	started();
	b_req();
	pages_zero(0, 2048, 64, 0);
	frame(PROTO_DONE, 0, NULL, 0);
	complete();
	after();
	b_error();
	save("fuzz_proto", "session");
	/* a bare lz4 block: 4 bytes of size, then the block */
	put(lz4_head, sizeof(lz4_head));
	proto_put_le32(size, 3 * PROTO_PAGE_SIZE - 1);
	put(size, sizeof(size));
	pages_lz4(0, 3, false);
	memmove(stream + 8, stream + 8 + PROTO_HDR_SIZE + proto_pages_head_size(3),
		used - 8 - PROTO_HDR_SIZE - proto_pages_head_size(3));
	used -= PROTO_HDR_SIZE + proto_pages_head_size(3);
	save("fuzz_proto", "lz4-block");
}

/* ---- fuzz_dest_session: we are the source ---- */

static void opts(uint8_t o0, uint8_t o1)
{
	const uint8_t o[2] = { o0, o1 };

	put(o, sizeof(o));
}

/* Everything before READY: checks, two pre-copy rounds, the state and SWITCH. */
static void src_precopy_until_switch(uint32_t switch_flags, bool map)
{
	vmdesc(GUEST_MEM, 0);
	pages_zero(0, 1024, 32, 2000);
	round_info(0);
	pages_lz4(3000, 8, true);
	round_info(1);
	if (map)
		pagemap(1024, 64);
	vmstate();
	frame(PROTO_SWITCH, switch_flags, NULL, 0);
}

static void dest_seeds(void)
{
	const char *t = "fuzz_dest_session";

	opts(0, 0);
	src_precopy_until_switch(0, false);
	frame(PROTO_GO, 0, NULL, 0);
	frame(PROTO_DONE, 0, NULL, 0);
	save(t, "precopy");
	/* post-copy: the 64 pages of the map come by request (urgent) and by push (bulk) */
	opts(0, 1);
	src_precopy_until_switch(PROTO_SWITCH_POSTCOPY, true);
	pages_zero(URGENT, 1024, 1, 0);
	frame(PROTO_GO, 0, NULL, 0);
	pages_zero(0, 1025, 63, 0);
	frame(PROTO_DONE, 0, NULL, 0);
	save(t, "postcopy");
	opts(0, 2);
	vmdesc(GUEST_MEM, 0);
	vmstate_end_only();
	frame(PROTO_SWITCH, 0, NULL, 0);
	frame(PROTO_GO, 0, NULL, 0);
	frame(PROTO_DONE, 0, NULL, 0);
	save(t, "precopy-end-only");
	/* READY lost with the link: the source comes back, learns WAIT_GO, sends GO */
	opts(0, 3);
	src_precopy_until_switch(0, false);
	marker();
	frame(PROTO_GO, 0, NULL, 0);
	frame(PROTO_DONE, 0, NULL, 0);
	save(t, "reconnect-wait-go");
	/* post-copy link lost after GO: STATUS RUNNING, the map of held pages, the rest */
	opts(0, 4);
	src_precopy_until_switch(PROTO_SWITCH_POSTCOPY, true);
	frame(PROTO_GO, 0, NULL, 0);
	pages_zero(0, 1024, 20, 0);
	marker();
	pages_zero(0, 1044, 44, 0);
	frame(PROTO_DONE, 0, NULL, 0);
	save(t, "reconnect-postcopy");
	/* refusals: too much memory, CPUID features this host lacks, an unknown guest */
	opts(0, 5);
	vmdesc(1ULL << 30, 0);
	save(t, "refuse-mem");
	opts(0, 6);
	vmdesc(GUEST_MEM, 0xffffffff);
	save(t, "refuse-cpuid");
	opts(0, 7);
	error(PROTO_ERROR, ECANCELED, "cancelled by the operator");
	save(t, "error");
	/* the source gives up after READY, before GO: the guest must not run */
	opts(0, 8);
	src_precopy_until_switch(0, false);
	error(PROTO_ERROR, EIO, "fence failed");
	save(t, "error-after-ready");
	opts(1, 9);
	hello(PROTO_CH_BULK, 0);
	vmdesc(GUEST_MEM, 0);
	save(t, "raw-hello");
	opts(2, 10);
	vmdesc(GUEST_MEM, 0);
	save(t, "resume-unknown");
	opts(4, 11);
	vmdesc(GUEST_MEM, 0);
	save(t, "urgent-bad-secret");
	/* post-copy owing the guest's code and stack: it faults at once, requests go out */
	opts(0, 12);
	vmdesc(GUEST_MEM, 0);
	pagemap(256, 64);
	pagemap(512, 64);
	vmstate();
	frame(PROTO_SWITCH, PROTO_SWITCH_POSTCOPY, NULL, 0);
	pages_zero(URGENT, 512, 64, 0);
	frame(PROTO_GO, 0, NULL, 0);
	pages_zero(0, 256, 64, 0);
	frame(PROTO_DONE, 0, NULL, 0);
	save(t, "postcopy-faults");
	/* a busier guest: two vCPUs writing, the I/O device on, the boot state kept */
	opts(0, 13);
	vmdesc_spec(32ULL << 20, 2, 0, "dirtier:wss=1M,rate=2000,io=1");
	pages_lz4(5000, 16, true);
	vmstate_end_only();
	frame(PROTO_SWITCH, 0, NULL, 0);
	frame(PROTO_GO, 0, NULL, 0);
	frame(PROTO_DONE, 0, NULL, 0);
	save(t, "dirtier-2vcpu");
}

/* ---- fuzz_src_session: we are the destination ---- */

static void accept_frame(void)
{
	frame(PROTO_ACCEPT, 0, NULL, 0);
}

static void src_seeds(void)
{
	const char *t = "fuzz_src_session";

	opts(0, 0);
	accept_frame();
	ready();
	started();
	after();
	save(t, "precopy");
	/* post-copy: two requests on the urgent channel, then COMPLETE */
	opts(1, 0);
	req(URGENT, 1024);
	req(URGENT, 5);
	accept_frame();
	ready();
	started();
	complete();
	after();
	save(t, "postcopy");
	opts(3, 0);
	accept_frame();
	ready();
	started();
	req(URGENT, 300);
	complete();
	after();
	save(t, "hybrid-after-1");
	opts(2, 0);
	accept_frame();
	ready();
	started();
	complete();
	after();
	save(t, "hybrid");
	opts(0, 0);
	error(PROTO_REFUSE, ENOMEM, "the VM needs 16 MiB; this host accepts 8");
	save(t, "refused");
	opts(0, 0);
	accept_frame();
	error(PROTO_ERROR, EBADMSG, "bad page batch");
	save(t, "error-precopy");
	opts(0, 0);
	accept_frame();
	ready();
	error(PROTO_ERROR, EIO, "cannot start the VM");
	save(t, "error-after-ready");
	/* the link breaks after the fence: the source comes back and asks */
	opts(0, 0);
	accept_frame();
	ready();
	marker();
	status(PROTO_DST_WAIT_GO, 0);
	started();
	after();
	save(t, "reconnect-wait-go");
	opts(0, 0);
	accept_frame();
	ready();
	marker();
	status(PROTO_DST_RUNNING, 0);
	save(t, "reconnect-running");
	opts(0, 0);
	accept_frame();
	ready();
	marker();
	status(PROTO_DST_RECEIVING, 0);
	save(t, "reconnect-receiving");
	opts(1, 0);
	accept_frame();
	ready();
	started();
	marker();
	status(PROTO_DST_RUNNING, 3);
	pagemap(0, GUEST_PAGES);
	accept_frame();
	complete();
	after();
	save(t, "reconnect-postcopy");
	opts(8, 0);
	accept_frame();
	ready();
	marker();
	status(PROTO_DST_WAIT_GO, 0);
	save(t, "no-reconnect");
	opts(0x10, 0);
	accept_frame();
	save(t, "precopy-timeout");
	opts(0x12, 0);
	accept_frame();
	ready();
	started();
	complete();
	after();
	save(t, "hybrid-no-convergence");
	opts(4, 0);
	hello(PROTO_CH_BULK, 0);
	accept_frame();
	save(t, "raw-hello-wrong-secret");
	opts(4, 0);
	error(PROTO_ERROR, EBUSY, "busy");
	save(t, "raw-hello-busy");
	/* post-copy, the link breaks with requests in flight; the destination holds half */
	opts(1, 0);
	req(URGENT, 1024);
	accept_frame();
	ready();
	started();
	marker();
	req(URGENT, 2000);
	req(URGENT, 4095);
	status(PROTO_DST_RUNNING, 2048);
	pagemap(0, GUEST_PAGES / 2);
	accept_frame();
	complete();
	after();
	save(t, "reconnect-postcopy-requests");
}

int main(int argc, char **argv)
{
	outdir = argc > 1 ? argv[1] : "tests/fuzz-corpus";
	if (mkdir(outdir, 0755) && errno != EEXIST) {
		perror(outdir);
		return 1;
	}
	take_state();
	proto_seeds();
	dest_seeds();
	src_seeds();
	return 0;
}
