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
#include "tests/seed_frames.h"

#define URGENT FZ_URGENT_BIT

/* ---- fuzz_proto ---- */

/* Stream mode: byte 0 even, bytes 1-2 give max_gfn = 1 + v % 4096 (here 4096). */
static void proto_stream(void)
{
	const uint8_t head[3] = { 0, 0xff, 0x0f };

	seed_put(head, sizeof(head));
}

/* Direct mode: one payload of @type, with max_gfn 4096. */
static void proto_direct(const char *name, uint32_t type, void (*build)(void))
{
	const uint8_t head[4] = { 1, (uint8_t)type, 0xff, 0x0f };
	size_t at;

	seed_put(head, sizeof(head));
	at = seed_used;
	build();
	/* drop the frame header: the payload alone */
	memmove(seed_stream + at, seed_stream + at + PROTO_HDR_SIZE,
		seed_used - at - PROTO_HDR_SIZE);
	seed_used -= PROTO_HDR_SIZE;
	seed_save("fuzz_proto", name);
}

static void b_hello(void)
{
	seed_hello(PROTO_CH_BULK, 0);
}
static void b_vmdesc(void)
{
	seed_vmdesc(GUEST_MEM, 0);
}
static void b_error(void)
{
	seed_error(PROTO_ERROR, EBUSY, "busy: seed");
}
static void b_round(void)
{
	seed_round_info(1);
}
static void b_req(void)
{
	seed_req(0, 4095);
}
static void b_pagemap(void)
{
	seed_pagemap(1024, 128);
}
static void b_pages(void)
{
	seed_pages_lz4(4000, 3, true);
}
static void b_progress(void)
{
	seed_progress(0, 77);
}
static void b_status(void)
{
	seed_status(PROTO_DST_WAIT_GO, 12);
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
		{ "direct-started", PROTO_STARTED, seed_started },
		{ "direct-after", PROTO_AFTER, seed_after },
		{ "direct-ready", PROTO_READY, seed_ready },
		{ "direct-status", PROTO_STATUS, b_status },
		{ "direct-req", PROTO_REQ, b_req },
		{ "direct-complete", PROTO_COMPLETE, seed_complete },
		{ "direct-progress", PROTO_PROGRESS, b_progress },
		{ "direct-pagemap", PROTO_PAGEMAP, b_pagemap },
		{ "direct-pages", PROTO_PAGES, b_pages },
		{ "direct-vmstate", PROTO_VMSTATE, seed_vmstate },
	};
	const uint8_t lz4_head[4] = { 1, 0xff, 0, 0 };
	uint8_t size[4];

	for (size_t i = 0; i < ARRAY_SIZE(direct); i++)
		proto_direct(direct[i].name, direct[i].type, direct[i].build);
	/* one file per frame type, seed_stream mode */
	proto_stream();
	b_hello();
	seed_save("fuzz_proto", "hello");
	proto_stream();
	b_vmdesc();
	seed_save("fuzz_proto", "vmdesc");
	proto_stream();
	seed_frame(PROTO_ACCEPT, 0, NULL, 0);
	seed_save("fuzz_proto", "accept");
	proto_stream();
	seed_error(PROTO_REFUSE, ENOMEM, "too big");
	seed_save("fuzz_proto", "refuse");
	proto_stream();
	seed_pages_zero(0, 6, 1, 5);
	seed_save("fuzz_proto", "pages-raw");
	proto_stream();
	seed_pages_lz4(0, 4, true);
	seed_save("fuzz_proto", "pages-lz4");
	proto_stream();
	seed_pages_lz4(4095 - 63, 63, true);
	seed_save("fuzz_proto", "pages-lz4-full");
	proto_stream();
	b_round();
	seed_save("fuzz_proto", "round");
	proto_stream();
	seed_vmstate();
	seed_save("fuzz_proto", "vmstate");
	proto_stream();
	seed_frame(PROTO_SWITCH, PROTO_SWITCH_POSTCOPY, NULL, 0);
	seed_save("fuzz_proto", "switch");
	proto_stream();
	seed_started();
	seed_save("fuzz_proto", "started");
	proto_stream();
	seed_after();
	seed_save("fuzz_proto", "after");
	proto_stream();
	b_error();
	seed_save("fuzz_proto", "error");
	proto_stream();
	b_req();
	seed_save("fuzz_proto", "req");
	proto_stream();
	seed_pagemap(0, 4096);
	seed_save("fuzz_proto", "pagemap");
	proto_stream();
	seed_frame(PROTO_DONE, 0, NULL, 0);
	seed_save("fuzz_proto", "done");
	proto_stream();
	seed_complete();
	seed_save("fuzz_proto", "complete");
	proto_stream();
	seed_ready();
	seed_save("fuzz_proto", "ready");
	proto_stream();
	seed_frame(PROTO_GO, 0, NULL, 0);
	seed_save("fuzz_proto", "go");
	proto_stream();
	seed_status(PROTO_DST_RUNNING, 0);
	seed_save("fuzz_proto", "status");
	proto_stream();
	seed_progress(0, 12345);
	seed_save("fuzz_proto", "progress");
	/* a whole post-copy session, both directions in one seed_stream */
	proto_stream();
	b_hello();
	b_vmdesc();
	seed_frame(PROTO_ACCEPT, 0, NULL, 0);
	seed_pages_lz4(1024, 8, true);
	b_round();
	seed_pagemap(2048, 64);
	seed_vmstate();
	seed_frame(PROTO_SWITCH, PROTO_SWITCH_POSTCOPY, NULL, 0);
	seed_ready();
	seed_frame(PROTO_GO, 0, NULL, 0);
	seed_started();
	b_req();
	seed_progress(0, PROTO_UNITS_UNKNOWN);
	seed_pages_zero(0, 2048, 64, 0);
	seed_frame(PROTO_DONE, 0, NULL, 0);
	seed_complete();
	seed_after();
	b_error();
	seed_save("fuzz_proto", "session");
	/* a bare lz4 block: 4 bytes of size, then the block */
	seed_put(lz4_head, sizeof(lz4_head));
	proto_put_le32(size, 3 * PROTO_PAGE_SIZE - 1);
	seed_put(size, sizeof(size));
	seed_pages_lz4(0, 3, false);
	memmove(seed_stream + 8, seed_stream + 8 + PROTO_HDR_SIZE + proto_pages_head_size(3),
		seed_used - 8 - PROTO_HDR_SIZE - proto_pages_head_size(3));
	seed_used -= PROTO_HDR_SIZE + proto_pages_head_size(3);
	seed_save("fuzz_proto", "lz4-block");
}

/* ---- fuzz_dest_session: we are the source ---- */

static void opts(uint8_t o0, uint8_t o1)
{
	const uint8_t o[2] = { o0, o1 };

	seed_put(o, sizeof(o));
}

/* Everything before READY: checks, two pre-copy rounds, the state and SWITCH. */
static void src_precopy_until_switch(uint32_t switch_flags, bool map)
{
	seed_vmdesc(GUEST_MEM, 0);
	seed_pages_zero(0, 1024, 32, 2000);
	seed_round_info(0);
	seed_pages_lz4(3000, 8, true);
	seed_round_info(1);
	if (map)
		seed_pagemap(1024, 64);
	seed_vmstate();
	seed_frame(PROTO_SWITCH, switch_flags, NULL, 0);
}

static void dest_seeds(void)
{
	const char *t = "fuzz_dest_session";

	opts(0, 0);
	src_precopy_until_switch(0, false);
	seed_frame(PROTO_GO, 0, NULL, 0);
	seed_frame(PROTO_DONE, 0, NULL, 0);
	seed_save(t, "precopy");
	/* post-copy: the 64 pages of the map come by request (urgent) and by push (bulk) */
	opts(0, 1);
	src_precopy_until_switch(PROTO_SWITCH_POSTCOPY, true);
	seed_pages_zero(URGENT, 1024, 1, 0);
	seed_frame(PROTO_GO, 0, NULL, 0);
	seed_pages_zero(0, 1025, 63, 0);
	seed_frame(PROTO_DONE, 0, NULL, 0);
	seed_save(t, "postcopy");
	opts(0, 2);
	seed_vmdesc(GUEST_MEM, 0);
	seed_vmstate_end_only();
	seed_frame(PROTO_SWITCH, 0, NULL, 0);
	seed_frame(PROTO_GO, 0, NULL, 0);
	seed_frame(PROTO_DONE, 0, NULL, 0);
	seed_save(t, "precopy-end-only");
	/* READY lost with the link: the source comes back, learns WAIT_GO, sends GO */
	opts(0, 3);
	src_precopy_until_switch(0, false);
	seed_marker();
	seed_frame(PROTO_GO, 0, NULL, 0);
	seed_frame(PROTO_DONE, 0, NULL, 0);
	seed_save(t, "reconnect-wait-go");
	/* post-copy link lost after GO: STATUS RUNNING, the map of held pages, the rest */
	opts(0, 4);
	src_precopy_until_switch(PROTO_SWITCH_POSTCOPY, true);
	seed_frame(PROTO_GO, 0, NULL, 0);
	seed_pages_zero(0, 1024, 20, 0);
	seed_marker();
	seed_pages_zero(0, 1044, 44, 0);
	seed_frame(PROTO_DONE, 0, NULL, 0);
	seed_save(t, "reconnect-postcopy");
	/* refusals: too much memory, CPUID features this host lacks, an unknown guest */
	opts(0, 5);
	seed_vmdesc(1ULL << 30, 0);
	seed_save(t, "refuse-mem");
	opts(0, 6);
	seed_vmdesc(GUEST_MEM, 0xffffffff);
	seed_save(t, "refuse-cpuid");
	opts(0, 7);
	seed_error(PROTO_ERROR, ECANCELED, "cancelled by the operator");
	seed_save(t, "error");
	/* the source gives up after READY, before GO: the guest must not run */
	opts(0, 8);
	src_precopy_until_switch(0, false);
	seed_error(PROTO_ERROR, EIO, "fence failed");
	seed_save(t, "error-after-ready");
	opts(1, 9);
	seed_hello(PROTO_CH_BULK, 0);
	seed_vmdesc(GUEST_MEM, 0);
	seed_save(t, "raw-hello");
	opts(2, 10);
	seed_vmdesc(GUEST_MEM, 0);
	seed_save(t, "resume-unknown");
	opts(4, 11);
	seed_vmdesc(GUEST_MEM, 0);
	seed_save(t, "urgent-bad-secret");
	/* post-copy owing the guest's code and stack: it faults at once, requests go out */
	opts(0, 12);
	seed_vmdesc(GUEST_MEM, 0);
	seed_pagemap(256, 64);
	seed_pagemap(512, 64);
	seed_vmstate();
	seed_frame(PROTO_SWITCH, PROTO_SWITCH_POSTCOPY, NULL, 0);
	seed_pages_zero(URGENT, 512, 64, 0);
	seed_frame(PROTO_GO, 0, NULL, 0);
	seed_pages_zero(0, 256, 64, 0);
	seed_frame(PROTO_DONE, 0, NULL, 0);
	seed_save(t, "postcopy-faults");
	/* a busier guest: two vCPUs writing, the I/O device on, the boot state kept */
	opts(0, 13);
	seed_vmdesc_spec(32ULL << 20, 2, 0, "dirtier:wss=1M,rate=2000,io=1");
	seed_pages_lz4(5000, 16, true);
	seed_vmstate_end_only();
	seed_frame(PROTO_SWITCH, 0, NULL, 0);
	seed_frame(PROTO_GO, 0, NULL, 0);
	seed_frame(PROTO_DONE, 0, NULL, 0);
	seed_save(t, "dirtier-2vcpu");
}

/* ---- fuzz_src_session: we are the destination ---- */

static void accept_frame(void)
{
	seed_frame(PROTO_ACCEPT, 0, NULL, 0);
}

static void src_seeds(void)
{
	const char *t = "fuzz_src_session";

	opts(0, 0);
	accept_frame();
	seed_ready();
	seed_started();
	seed_after();
	seed_save(t, "precopy");
	/* post-copy: two requests on the urgent channel, then COMPLETE */
	opts(1, 0);
	seed_req(URGENT, 1024);
	seed_progress(URGENT, PROTO_UNITS_UNKNOWN);
	seed_req(URGENT, 5);
	seed_progress(URGENT, 4242);
	accept_frame();
	seed_ready();
	seed_started();
	seed_complete();
	seed_after();
	seed_save(t, "postcopy");
	opts(3, 0);
	accept_frame();
	seed_ready();
	seed_started();
	seed_req(URGENT, 300);
	seed_complete();
	seed_after();
	seed_save(t, "hybrid-after-1");
	opts(2, 0);
	accept_frame();
	seed_ready();
	seed_started();
	seed_complete();
	seed_after();
	seed_save(t, "hybrid");
	opts(0, 0);
	seed_error(PROTO_REFUSE, ENOMEM, "the VM needs 16 MiB; this host accepts 8");
	seed_save(t, "refused");
	opts(0, 0);
	accept_frame();
	seed_error(PROTO_ERROR, EBADMSG, "bad page batch");
	seed_save(t, "error-precopy");
	opts(0, 0);
	accept_frame();
	seed_ready();
	seed_error(PROTO_ERROR, EIO, "cannot start the VM");
	seed_save(t, "error-after-ready");
	/* the link breaks after the fence: the source comes back and asks */
	opts(0, 0);
	accept_frame();
	seed_ready();
	seed_marker();
	seed_status(PROTO_DST_WAIT_GO, 0);
	seed_started();
	seed_after();
	seed_save(t, "reconnect-wait-go");
	opts(0, 0);
	accept_frame();
	seed_ready();
	seed_marker();
	seed_status(PROTO_DST_RUNNING, 0);
	seed_save(t, "reconnect-running");
	opts(0, 0);
	accept_frame();
	seed_ready();
	seed_marker();
	seed_status(PROTO_DST_RECEIVING, 0);
	seed_save(t, "reconnect-receiving");
	opts(1, 0);
	accept_frame();
	seed_ready();
	seed_started();
	seed_marker();
	seed_status(PROTO_DST_RUNNING, 3);
	seed_pagemap(0, GUEST_PAGES);
	accept_frame();
	seed_complete();
	seed_after();
	seed_save(t, "reconnect-postcopy");
	opts(8, 0);
	accept_frame();
	seed_ready();
	seed_marker();
	seed_status(PROTO_DST_WAIT_GO, 0);
	seed_save(t, "no-reconnect");
	opts(0x10, 0);
	accept_frame();
	seed_save(t, "precopy-timeout");
	opts(0x12, 0);
	accept_frame();
	seed_ready();
	seed_started();
	seed_complete();
	seed_after();
	seed_save(t, "hybrid-no-convergence");
	opts(4, 0);
	seed_hello(PROTO_CH_BULK, 0);
	accept_frame();
	seed_save(t, "raw-hello-wrong-secret");
	opts(4, 0);
	seed_error(PROTO_ERROR, EBUSY, "busy");
	seed_save(t, "raw-hello-busy");
	/* post-copy, the link breaks with requests in flight; the destination holds half */
	opts(1, 0);
	seed_req(URGENT, 1024);
	accept_frame();
	seed_ready();
	seed_started();
	seed_marker();
	seed_req(URGENT, 2000);
	seed_req(URGENT, 4095);
	seed_status(PROTO_DST_RUNNING, 2048);
	seed_pagemap(0, GUEST_PAGES / 2);
	accept_frame();
	seed_complete();
	seed_after();
	seed_save(t, "reconnect-postcopy-requests");
}

int main(int argc, char **argv)
{
	seed_outdir = argc > 1 ? argv[1] : "tests/fuzz-corpus";
	if (mkdir(seed_outdir, 0755) && errno != EEXIST) {
		perror(seed_outdir);
		return 1;
	}
	seed_take_state();
	proto_seeds();
	dest_seeds();
	src_seeds();
	return 0;
}
