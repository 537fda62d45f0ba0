/* SPDX-License-Identifier: MIT */
/*
 * Frames for the fuzz seeds (tests/gen_fuzz_seeds.c): each builder appends
 * one valid frame to seed_stream; seed_save writes the stream as the seed
 * DIR/<target>/<name> and empties it. @chbit is FZ_URGENT_BIT for a frame
 * on the urgent channel (session fuzzers), else 0.
 */
#ifndef HM_TESTS_SEED_FRAMES_H
#define HM_TESTS_SEED_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM	(16ULL << 20) /* the seeds' guest */
#define GUEST_PAGES	(GUEST_MEM / PROTO_PAGE_SIZE)
#define SEED_STREAM_MAX (1 << 20)

extern uint8_t seed_stream[SEED_STREAM_MAX];
extern size_t seed_used;
extern const char *seed_outdir; /* DIR */

void seed_put(const void *p, size_t len);
void seed_frame(uint32_t type, uint32_t flags, const void *payload, size_t len);
/* Session fuzzers: the link breaks here and the source reconnects. */
void seed_marker(void);
void seed_save(const char *target, const char *name);

void seed_hello(uint32_t channel, uint32_t flags);
void seed_vmdesc_spec(uint64_t mem, uint32_t vcpus, uint32_t cpuid_all, const char *spec);
void seed_vmdesc(uint64_t mem, uint32_t cpuid_all);
void seed_error(uint32_t type, uint32_t code, const char *msg);
void seed_round_info(uint32_t round);
void seed_ready(void);
void seed_started(void);
void seed_after(void);
void seed_status(uint32_t phase, uint64_t missing);
void seed_complete(void);
void seed_req(uint32_t chbit, uint64_t gfn);
void seed_progress(uint32_t chbit, uint64_t units);
/* A run of @nbits pages from @first, every page set. */
void seed_pagemap(uint64_t first, uint32_t nbits);
/* Zero pages @first.. (@n of them, at most a batch), plus one data page at @data_gfn if not 0. */
void seed_pages_zero(uint32_t chbit, uint64_t first, uint32_t n, uint64_t data_gfn);
void seed_pages_lz4(uint64_t first, uint32_t n, bool zero);
/* The real VM state seed_take_state took; the end record alone. */
void seed_vmstate(void);
void seed_vmstate_end_only(void);
/* A real VM state: the idle guest, paused, saved as the source sends it (/dev/kvm). */
void seed_take_state(void);

#endif
