// SPDX-License-Identifier: MIT
/*
 * The seed writer's frames (tests/seed_frames.h): a byte stream that seed
 * builders append frames to, saved as one seed file, and a real VM state.
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

uint8_t seed_stream[SEED_STREAM_MAX];
size_t seed_used;
const char *seed_outdir;

/* A real VM state: the idle guest, paused, saved as the source sends it. */
static uint8_t state[PROTO_VMSTATE_MAX];
static size_t state_len;

void seed_put(const void *p, size_t len)
{
	if (seed_used + len > sizeof(seed_stream))
		abort();
	memcpy(seed_stream + seed_used, p, len);
	seed_used += len;
}

void seed_frame(uint32_t type, uint32_t flags, const void *payload, size_t len)
{
	uint8_t hdr[PROTO_HDR_SIZE];

	proto_hdr_encode(hdr, type, flags, len);
	seed_put(hdr, sizeof(hdr));
	seed_put(payload, len);
}

/* Session fuzzers: the link breaks here and the source reconnects. */
void seed_marker(void)
{
	seed_frame(FZ_MARKER, 0, NULL, 0);
}

void seed_save(const char *target, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", seed_outdir, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", seed_outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(seed_stream, 1, seed_used, f) != seed_used || fclose(f)) {
		perror(path);
		exit(1);
	}
	seed_used = 0;
}

/* ---- frames ---- */

void seed_hello(uint32_t channel, uint32_t flags)
{
	struct proto_hello m = {
		.magic = PROTO_MAGIC, .version = PROTO_VERSION, .channel = channel, .flags = flags
	};
	uint8_t buf[PROTO_HELLO_SIZE];

	memset(m.secret, 0xa5, sizeof(m.secret));
	proto_hello_encode(buf, &m);
	seed_frame(PROTO_HELLO, 0, buf, sizeof(buf));
}

void seed_vmdesc_spec(uint64_t mem, uint32_t vcpus, uint32_t cpuid_all, const char *spec)
{
	struct proto_vmdesc m = { .mem_bytes = mem, .nr_vcpus = vcpus, .xsave_size = 4096 };
	uint8_t buf[PROTO_VMDESC_SIZE];

	for (int i = 0; i < PROTO_CPUID_WORDS; i++)
		m.cpuid[i] = cpuid_all;
	m.resident_bytes = 2 << 20;
	snprintf(m.spec, sizeof(m.spec), "%s", spec);
	proto_vmdesc_encode(buf, &m);
	seed_frame(PROTO_VMDESC, 0, buf, sizeof(buf));
}

void seed_vmdesc(uint64_t mem, uint32_t cpuid_all)
{
	seed_vmdesc_spec(mem, 1, cpuid_all, "idle");
}

void seed_error(uint32_t type, uint32_t code, const char *msg)
{
	uint8_t buf[PROTO_ERROR_SIZE];

	proto_error_encode(buf, code, msg);
	seed_frame(type, 0, buf, sizeof(buf));
}

void seed_round_info(uint32_t round)
{
	const struct proto_round r = { .round = round, .pages = 300, .dirty_rate = 100 };
	uint8_t buf[PROTO_ROUND_SIZE];

	proto_round_encode(buf, &r);
	seed_frame(PROTO_ROUND, 0, buf, sizeof(buf));
}

void seed_ready(void)
{
	const struct proto_ready r = { .restore_ns = 150000 };
	uint8_t buf[PROTO_READY_SIZE];

	proto_ready_encode(buf, &r);
	seed_frame(PROTO_READY, 0, buf, sizeof(buf));
}

void seed_started(void)
{
	const struct proto_started s = { .switch_to_run_ns = 400000, .restore_ns = 150000 };
	uint8_t buf[PROTO_STARTED_SIZE];

	proto_started_encode(buf, &s);
	seed_frame(PROTO_STARTED, 0, buf, sizeof(buf));
}

void seed_after(void)
{
	const struct proto_after a = { .units_per_s = 1000, .first_report_ns = 2000000 };
	uint8_t buf[PROTO_AFTER_SIZE];

	proto_after_encode(buf, &a);
	seed_frame(PROTO_AFTER, 0, buf, sizeof(buf));
}

void seed_status(uint32_t phase, uint64_t missing)
{
	const struct proto_status s = { .phase = phase, .missing = missing };
	uint8_t buf[PROTO_STATUS_SIZE];

	proto_status_encode(buf, &s);
	seed_frame(PROTO_STATUS, 0, buf, sizeof(buf));
}

void seed_complete(void)
{
	const struct proto_complete c = { .remote_faults = 2, .lat_p50_us = 60, .lat_max_us = 90 };
	uint8_t buf[PROTO_COMPLETE_SIZE];

	proto_complete_encode(buf, &c);
	seed_frame(PROTO_COMPLETE, 0, buf, sizeof(buf));
}

void seed_req(uint32_t chbit, uint64_t gfn)
{
	uint8_t buf[PROTO_REQ_SIZE];

	proto_req_encode(buf, gfn);
	seed_frame(PROTO_REQ | chbit, 0, buf, sizeof(buf));
}

void seed_progress(uint32_t chbit, uint64_t units)
{
	const struct proto_progress p = { .units = units, .remote_faults = 3, .pages_placed = 900 };
	uint8_t buf[PROTO_PROGRESS_SIZE];

	proto_progress_encode(buf, &p);
	seed_frame(PROTO_PROGRESS | chbit, 0, buf, sizeof(buf));
}

/* A run of @nbits pages from @first, every page set. */
void seed_pagemap(uint64_t first, uint32_t nbits)
{
	static uint8_t buf[PROTO_PAGEMAP_HDR + PROTO_PAGEMAP_MAX_BITS / 8];

	proto_pagemap_encode_head(buf, first, nbits);
	memset(buf + PROTO_PAGEMAP_HDR, 0xff, nbits / 8);
	seed_frame(PROTO_PAGEMAP, 0, buf, PROTO_PAGEMAP_HDR + nbits / 8);
}

/* Zero pages @first.. (@n of them, at most a batch), plus one data page at @data_gfn if not 0. */
void seed_pages_zero(uint32_t chbit, uint64_t first, uint32_t n, uint64_t data_gfn)
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
	seed_frame(PROTO_PAGES | chbit, 0, buf, head + (data_gfn ? PROTO_PAGE_SIZE : 0));
}

/* @n patterned pages from @first, lz4 (with a zero page in the middle when @zero). */
void seed_pages_lz4(uint64_t first, uint32_t n, bool zero)
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
	seed_frame(PROTO_PAGES, PROTO_PAGES_LZ4, buf, head + len);
}

void seed_vmstate(void)
{
	seed_frame(PROTO_VMSTATE, 0, state, state_len);
}

/* Only the end record: the destination keeps the entry state vm_new gave it. */
void seed_vmstate_end_only(void)
{
	uint8_t buf[VMSTATE_REC_HDR];
	struct vmstate_buf b;

	vmstate_init(&b, buf, sizeof(buf));
	vmstate_put(&b, VS_END, VMSTATE_VM_CPU, NULL, 0);
	seed_frame(PROTO_VMSTATE, 0, buf, b.len);
}

/* ---- the real state ---- */

void seed_take_state(void)
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
