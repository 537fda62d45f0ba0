/* SPDX-License-Identifier: MIT */
/*
 * The control command `trace` of a running VM: turns the probe's
 * measurement on (src/probe.h), streams one sample line per second for
 * `seconds` (default 10, at most VMCTL_TRACE_MAX_S), then stops tracking
 * and answers. Lines, in order:
 *   {"type":"vm","ram_bytes":N,"resident_pages":N,"zero_pages":N,"vcpus":N,
 *    "tracking":"dirty-log","source":"...","fallback_reason":null|"..."}
 *   {"type":"sample","t_s":S, <probe_sample_json members>}   (one per second)
 *   {"ok":true,"type":"done","samples":N}  or  {"ok":false,"error":"..."}
 * Request members: "seconds" (1..VMCTL_TRACE_MAX_S), "bpf" (false: measure
 * from the harvest only, e.g. to measure what BPF costs the guest).
 *
 * A trace runs its own dirty tracking, so it is refused while a migration
 * runs, and a migration that starts ends the trace first
 * (vmctl_trace_stop): two harvesters would steal each other's pages.
 * Loop thread only.
 */
#ifndef HM_VMCTL_TRACE_H
#define HM_VMCTL_TRACE_H

#include <stdbool.h>
#include "src/util.h"

struct event_base;
struct control;
struct vm;
struct vmctl;
struct vmctl_trace;

#define VMCTL_TRACE_MAX_S 3600

/* For @vm (not owned) served by @vc (not owned; asked whether a migration runs). */
struct vmctl_trace *vmctl_trace_new(struct event_base *base, struct vm *vm, struct vmctl *vc);
/* Ends a running trace (its requester gets an error line) and frees. Accepts NULL. */
void vmctl_trace_free(struct vmctl_trace *t);
/* Register "trace" on @ctl. Returns 0 or -errno. */
int vmctl_trace_attach(struct vmctl_trace *t, struct control *ctl) __must_check;
/*
 * End a running trace now, its dirty tracking off before this returns; the
 * requester gets an error line saying @why. No-op when none runs or @t is NULL.
 */
void vmctl_trace_stop(struct vmctl_trace *t, const char *why);

#endif
