/* SPDX-License-Identifier: MIT */
/*
 * A running VM served on the event loop: its control commands (status,
 * verify, pause, resume, stop), rate sampling of the guest's progress, the
 * asynchronous verify (the verdict arrives on a vCPU thread and is handed
 * to the loop), and notice when the VM stops. Loop thread only, except
 * where noted.
 */
#ifndef HM_VMCTL_H
#define HM_VMCTL_H

#include <stdbool.h>
#include <stdint.h>
#include "src/devwin.h"
#include "src/util.h"

struct event_base;
struct control;
struct vm;
struct json_out;
struct guest_spec;
struct vmctl;
struct mig_stats;

/* Verdict of a verify this side asked for; v->err < 0 when it could not run. */
typedef void (*vmctl_verify_fn)(void *arg, const struct devwin_verdict *v);
/* The VM stopped: @err is 0 for a requested stop, else the VM's failure (-errno). */
typedef void (*vmctl_exit_fn)(void *arg, int err);

#define VMCTL_VERIFY_TIMEOUT_MS 120000

/* Serve @vm (not owned) on @base. NULL on allocation failure. */
struct vmctl *vmctl_new(struct event_base *base, struct vm *vm, const struct guest_spec *spec);
/* Answers any request still waiting. Accepts NULL. */
void vmctl_free(struct vmctl *vc);
void vmctl_set_exit_cb(struct vmctl *vc, vmctl_exit_fn fn, void *arg);
/* Register status, verify, pause, resume and stop on @ctl. */
int vmctl_attach(struct vmctl *vc, struct control *ctl) __must_check;
/* Start the periodic progress sampling (call after vm_start). */
int vmctl_start(struct vmctl *vc) __must_check;
/*
 * Ask the guest to verify; @fn runs on the loop with the verdict.
 * -EBUSY (one in flight), -EAGAIN (paused) or -ESHUTDOWN (stopped).
 */
int vmctl_verify(struct vmctl *vc, vmctl_verify_fn fn, void *arg) __must_check;
/* Append the status members (flat) to the open object @j. */
void vmctl_status(struct vmctl *vc, struct json_out *j);
/* Last verdict; false when no verify has completed. */
bool vmctl_last_verdict(struct vmctl *vc, struct devwin_verdict *v);
/* True once the VM has moved away; its report and destination come back. */
bool vmctl_migrated(struct vmctl *vc, struct mig_stats *s, const char **to);
/*
 * Why stopping the VM now would lose or fork the guest (a migration runs,
 * or the VM is fenced holding pages the destination needs), or NULL.
 */
const char *vmctl_unsafe_to_stop(struct vmctl *vc);
struct metrics_out;
/*
 * A metrics source (src/metrics.h) for @arg, a vmctl: the VM's figures and
 * those of its migration out, running or the last one.
 */
void vmctl_metrics(void *arg, struct metrics_out *o);
/*
 * On a destination: while @fn(@arg) returns a reason (post-copy pages still
 * arriving), `trace` and `migrate` are refused with it: a trace would
 * measure page arrivals, not the guest, and the VM cannot move on before
 * it is whole here. @fn runs on the loop thread.
 */
typedef const char *(*vmctl_arriving_fn)(void *arg);
void vmctl_set_arriving(struct vmctl *vc, vmctl_arriving_fn fn, void *arg);
/* That reason now, or NULL. */
const char *vmctl_arriving(struct vmctl *vc);
/* Average work units per second since the first progress report. */
double vmctl_units_avg(struct vmctl *vc);

#endif
