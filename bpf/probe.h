/* SPDX-License-Identifier: MIT */
/*
 * Shared by bpf/probe.bpf.c (kernel side) and src/probe_bpf.c (user side):
 * sizes of the maps the two sides exchange. Plain integers only (STYLE.md
 * rule 21): this header is compiled by clang -target bpf and by gcc.
 */
#ifndef HM_BPF_PROBE_H
#define HM_BPF_PROBE_H

/* Resolution of the first-write time histogram: 10 ms. */
#define PROBE_BPF_TICK_NS 10000000ULL
/*
 * Ticks per epoch histogram (40.96 s, room for a 30 s window and its
 * epoch); writes after the last tick are counted in the last one.
 */
#define PROBE_BPF_NTICKS 4096
/* vCPU threads whose run time is summed (HM_MAX_VCPUS is 8). */
#define PROBE_BPF_MAX_VCPUS 64

#endif
