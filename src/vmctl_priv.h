/* SPDX-License-Identifier: MIT */
/*
 * What src/vmctl.c (the VM's control commands) and src/vmctl_mig.c
 * (migration out) share: the state of a served VM. Loop thread only,
 * except where noted.
 */
#ifndef HM_VMCTL_PRIV_H
#define HM_VMCTL_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include "src/devwin.h"
#include "src/meter.h"
#include "src/mig.h"
#include "src/vmctl.h"

struct control;
struct ctl_req;

#define RATE_WINDOW_NS (1 * NSEC_PER_SEC)

struct vmctl {
	struct event_base *base;
	struct vm *vm;		       /* not owned */
	const struct guest_spec *spec; /* not owned */
	struct meter units;
	struct event *sample_ev;
	struct event *verdict_ev; /* activated from a vCPU thread */
	struct event *verify_timeout_ev;
	struct event *stopped_ev; /* activated when the VM stops by itself */
	pthread_mutex_t lock;	  /* guards verdict and verdict_ready */
	struct devwin_verdict verdict;
	bool verdict_ready;
	bool verify_busy;
	struct devwin_verdict last;
	bool have_last;
	struct ctl_req *verify_req; /* control request waiting for a verdict */
	vmctl_verify_fn verify_fn;  /* or an in-process requester */
	void *verify_arg;
	vmctl_exit_fn exit_fn;
	void *exit_arg;
	bool exited;
	/* migration out */
	struct mig *mig; /* running, or kept after it ended fenced (for migrate --resume) */
	bool mig_active; /* its thread runs */
	struct ctl_req *mig_req;
	struct event *mig_done_ev; /* activated from the migration thread */
	struct event *mig_tick_ev; /* progress lines to the requester */
	struct mig_params mp;
	char bad_param[400]; /* why a migrate request's policy file was refused */
	struct mig_stats mig_final;
	bool migrated;
	bool fenced; /* the switch-over did not complete: the guest may run there; never resume */
	struct vmctl_trace *trace;  /* the `trace` command (src/vmctl_trace.c) */
	vmctl_arriving_fn arriving; /* a destination: still receiving pages? */
	void *arriving_arg;
};

/* The VM is done here: a pending verify is answered, the exit callback runs once. */
void vmctl_notify_exit(struct vmctl *vc, int err);
/* For control_reply_then: the VM stops once the reply is out. @arg is the vmctl. */
void vmctl_stop_after_reply(void *arg);

/* src/vmctl_mig.c: its events (0 or -ENOMEM), their release with any migration, its commands. */
int vmctl_mig_init(struct vmctl *vc) __must_check;
void vmctl_mig_free(struct vmctl *vc);
int vmctl_mig_attach(struct vmctl *vc, struct control *ctl) __must_check;
struct metrics_out;
/* The migration's metrics, when one ran. */
void vmctl_mig_metrics(struct vmctl *vc, struct metrics_out *o);

#endif
