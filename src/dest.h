/* SPDX-License-Identifier: MIT */
/*
 * Destination side: accept one migration, check that this host can run
 * the VM, build it, place the pages it receives, load its state and wait
 * for the source's GO before it runs the guest (docs/switchover.md); then,
 * after a post-copy switch, take the pages still owed until every one is
 * here. A thread of its own (dest_start), the twin of mig_start.
 *
 * Everything read from the wire is validated (proto.c, vmstate.c,
 * mem_gpa_to_hva) before use; any problem is answered with an ERROR frame
 * and a clean abort. The guest never runs here before GO; once it runs,
 * a broken link makes this side wait for the source to reconnect.
 */
#ifndef HM_DEST_H
#define HM_DEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "src/dirty.h"
#include "src/guest.h"
#include "src/link.h"
#include "src/util.h"
#include "uffd/fault.h"

struct vm;
struct tls_ctx;

struct dest_stats {
	uint64_t pages; /* pages placed */
	uint64_t zero_pages;
	uint64_t bytes; /* bytes read */
	uint32_t rounds;
	uint64_t switch_to_run_ns;
};

/*
 * Called from the destination's thread: once when the guest runs here
 * (d->vm set, err 0) or when the migration failed before that (err < 0,
 * d->why set), and once more when the migration is over (d->done).
 */
typedef void (*dest_event_fn)(void *arg, int err);

struct dest_params {
	int listen_fd;	     /* not owned */
	int stop_fd;	     /* not owned: readable = give up waiting */
	uint64_t max_mem;    /* refuse VMs with more guest-physical RAM */
	uint64_t mem_avail;  /* refuse VMs whose touched memory exceeds this (MemAvailable) */
	struct tls_ctx *tls; /* not owned; NULL = plain TCP */
	int wait_ms;	     /* wait for a source at most this long, -1 = forever */
	int reconnect_ms; /* after READY, wait this long for a broken link to return (0 = 60 s) */
	enum dirty_mode dirty; /* dirty tracking of the VM built here (it may migrate on) */
};

struct dest {
	struct dest_params p;
	dest_event_fn event;
	void *event_arg;
	pthread_t thread;
	bool thread_started;
	struct link link;
	struct vm *vm; /* built here; handed to the caller once it runs */
	struct guest_spec spec;
	struct dest_stats st;
	uint32_t phase;	 /* enum proto_dst_phase; read by other threads (atomic) */
	uint64_t run_ns; /* when the vCPUs started */
	bool refused;	 /* a REFUSE went out: no ERROR after it */
	bool running;	 /* the guest runs here: d->vm belongs to the caller */
	bool done;	 /* the migration is over (successfully or not) */
	int err;
	/* post-copy */
	bool postcopy;	      /* the VM runs here while pages still arrive */
	struct bitmap needed; /* pages the source still holds (PAGEMAP) */
	struct fault fault;
	struct fault_hist lat_hist; /* post-copy request latencies */
	struct bitmap written;	    /* pages written here before the switch (vm_new, pre-copy) */
	pthread_t uthread;
	bool ustarted;
	pthread_mutex_t ulock;	  /* one writer on the urgent connection; held to swap it */
	int urgent_err;		  /* atomic: why the urgent thread ended, 0 while it runs */
	bool stopping;		  /* atomic: dest_free is waiting for the thread */
	bool poisoned;		  /* atomic: pages were zero-filled to unblock; never run this VM */
	bool abandoned;		  /* dest_abandon ran: its missing pages were said */
	uint64_t progress_ns;	  /* the last PROGRESS sent (urgent thread) */
	bool units_known;	  /* every vCPU has reported here (urgent thread) */
	pthread_mutex_t why_lock; /* d->why is written by the session and urgent threads */
	/* while a session runs, other sources are turned away as busy */
	pthread_t doorman;
	bool doorman_started;
	int doorman_quit; /* eventfd: readable = stop turning sources away */
	size_t state_len;
	uint8_t urx[PROTO_PAGES_HDR + PROTO_URGENT_MAX * (8 + PROTO_PAGE_SIZE)];
	uint8_t rx[PROTO_FRAME_MAX];
	uint8_t scratch[PROTO_BATCH_MAX * PROTO_PAGE_SIZE];
	uint8_t state[PROTO_VMSTATE_MAX];
	char why[256];
};

/*
 * Start receiving a migration on its own thread. @event is told when the
 * guest runs here and when it is over. NULL on allocation failure.
 */
struct dest *dest_start(const struct dest_params *p, dest_event_fn event, void *arg);
/* The post-copy request latency histogram so far. Any thread. */
void dest_latency_hist(struct dest *d, struct fault_hist *out);
/* Pages still owed (post-copy), 0 otherwise. Any thread. */
uint64_t dest_missing(struct dest *d);
/*
 * The process is about to stop a guest that runs here while post-copy pages
 * are still owed (the operator stops it, or the source is gone): say which
 * pages are missing, then zero-fill every fault, now and later, so that no
 * vCPU stays blocked in the kernel on a page that will not come. A vCPU
 * waiting in a userfault cannot be interrupted by a signal on kernels
 * before 6.4 (KVM's page faults are killable only), so without this the
 * stop would wait forever. This copy is poisoned: it only stops from here
 * (the source, fenced, keeps every page). Nothing when no page is owed.
 * Accepts NULL.
 */
void dest_abandon(struct dest *d);
/*
 * Stop: a wait for a source ends, a post-copy still receiving is cut (its
 * missing pages are said), and the thread is joined. Frees everything but
 * a VM already handed over (d->running). Accepts NULL.
 */
void dest_free(struct dest *d);

#endif
