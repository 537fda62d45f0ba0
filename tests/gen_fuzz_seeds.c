// SPDX-License-Identifier: MIT
/*
 * Writes the seed inputs of tests/fuzz_proto.c into tests/fuzz-seeds/. Run
 * once by hand; the outputs are committed:
 *   cc -I. -D_GNU_SOURCE tests/gen_fuzz_seeds.c src/proto.c src/compress.c -llz4 \
 *      -o /tmp/gen_fuzz_seeds && /tmp/gen_fuzz_seeds tests/fuzz-seeds
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/compress.h"
#include "src/proto.h"

static uint8_t stream[64 * 1024];
static size_t used;

static void frame(uint32_t type, uint32_t flags, const void *payload, size_t len)
{
	if (used + PROTO_HDR_SIZE + len > sizeof(stream))
		abort();
	proto_hdr_encode(stream + used, type, flags, len);
	memcpy(stream + used + PROTO_HDR_SIZE, payload, len);
	used += PROTO_HDR_SIZE + len;
}

static void hello(void)
{
	const struct proto_hello m = { .magic = PROTO_MAGIC,
				       .version = PROTO_VERSION,
				       .channel = PROTO_CH_BULK,
				       .session = 0x1234 };
	uint8_t buf[PROTO_HELLO_SIZE];

	proto_hello_encode(buf, &m);
	frame(PROTO_HELLO, 0, buf, sizeof(buf));
}

static void vmdesc(void)
{
	struct proto_vmdesc m = { .mem_bytes = 16 << 20, .nr_vcpus = 1, .tsc_khz = 1000000 };
	uint8_t buf[PROTO_VMDESC_SIZE];

	strcpy(m.spec, "idle");
	proto_vmdesc_encode(buf, &m);
	frame(PROTO_VMDESC, 0, buf, sizeof(buf));
}

/* Two pages: gfn 5 with data, gfn 6 zero. */
static void pages_raw(void)
{
	static uint8_t buf[PROTO_PAGES_HDR + 2 * 8 + PROTO_PAGE_SIZE];
	const uint64_t gfns[] = { 5, 6 | PROTO_ZERO_PAGE };
	size_t head = proto_pages_encode_head(buf, gfns, 2, 0, PROTO_PAGE_SIZE);

	for (size_t i = 0; i < PROTO_PAGE_SIZE; i++)
		buf[head + i] = (uint8_t)(i * 31);
	frame(PROTO_PAGES, 0, buf, head + PROTO_PAGE_SIZE);
}

/* Four patterned pages (gfn 4095 is the last one of the fuzz guest) and a zero page, lz4. */
static void pages_lz4(void)
{
	static uint8_t raw[4 * PROTO_PAGE_SIZE], buf[PROTO_MAX_PAYLOAD];
	static struct compress c;
	const uint64_t gfns[] = { 4095, 0, 1 | PROTO_ZERO_PAGE, 77, 2 };
	size_t head = proto_pages_head_size(5), n;

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t) "hybridmig"[i % 9];
	n = compress_batch(&c, raw, sizeof(raw), buf + head, sizeof(buf) - head);
	if (!n)
		abort();
	proto_pages_encode_head(buf, gfns, 5, PROTO_PAGES_LZ4, (uint32_t)n);
	frame(PROTO_PAGES, PROTO_PAGES_LZ4, buf, head + n);
}

/* A full batch: 64 pages, every other one zero, lz4 (decodes to 128 KiB). */
static void pages_lz4_full(void)
{
	static uint8_t raw[PROTO_BATCH_MAX / 2 * PROTO_PAGE_SIZE], buf[PROTO_MAX_PAYLOAD];
	static struct compress c;
	uint64_t gfns[PROTO_BATCH_MAX];
	size_t head = proto_pages_head_size(PROTO_BATCH_MAX), n;

	for (uint32_t i = 0; i < PROTO_BATCH_MAX; i++)
		gfns[i] = (4095 - 3 * i) | (i % 2 ? PROTO_ZERO_PAGE : 0);
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i / PROTO_PAGE_SIZE + (i % 64 == 0));
	n = compress_batch(&c, raw, sizeof(raw), buf + head, sizeof(buf) - head);
	if (!n)
		abort();
	proto_pages_encode_head(buf, gfns, PROTO_BATCH_MAX, PROTO_PAGES_LZ4, (uint32_t)n);
	frame(PROTO_PAGES, PROTO_PAGES_LZ4, buf, head + n);
}

static void rest(void)
{
	const struct proto_round r = { .round = 1, .pages = 3, .dirty_rate = 100 };
	const struct proto_started s = { .switch_to_run_ns = 1000, .restore_ns = 500 };
	const struct proto_after a = { .units_per_s = 10, .first_report_ns = 2000 };
	uint8_t buf[PROTO_ERROR_SIZE], state[32] = { 1, 2, 3 };

	proto_round_encode(buf, &r);
	frame(PROTO_ROUND, 0, buf, PROTO_ROUND_SIZE);
	frame(PROTO_VMSTATE, 0, state, sizeof(state));
	frame(PROTO_SWITCH, 0, NULL, 0);
	frame(PROTO_ACCEPT, 0, NULL, 0);
	proto_started_encode(buf, &s);
	frame(PROTO_STARTED, 0, buf, PROTO_STARTED_SIZE);
	proto_after_encode(buf, &a);
	frame(PROTO_AFTER, 0, buf, PROTO_AFTER_SIZE);
	proto_error_encode(buf, 5, "seed error");
	frame(PROTO_REFUSE, 0, buf, PROTO_ERROR_SIZE);
	frame(PROTO_ERROR, 0, buf, PROTO_ERROR_SIZE);
}

static void save(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(stream, 1, used, f) != used || fclose(f)) {
		perror(path);
		exit(1);
	}
	used = 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz-seeds";

	hello();
	save(dir, "hello");
	pages_raw();
	save(dir, "pages-raw");
	pages_lz4();
	save(dir, "pages-lz4");
	pages_lz4_full();
	save(dir, "pages-lz4-full");
	hello();
	vmdesc();
	pages_raw();
	pages_lz4();
	rest();
	save(dir, "session");
	return 0;
}
