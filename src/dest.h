/* SPDX-License-Identifier: MIT */
/*
 * Destination side: accept one migration, check that this host can run
 * the VM, build it, place the pages it receives, restore its state and
 * start it. Blocking; runs on a worker thread. Everything read from the
 * wire is validated (proto.c, vmstate.c, mem_gpa_to_hva) before use; any
 * problem is answered with an ERROR frame and a clean abort.
 */
#ifndef HM_DEST_H
#define HM_DEST_H

#include <stdbool.h>
#include <stdint.h>
#include "src/guest.h"
#include "src/net.h"
#include "src/util.h"
#include "uffd/fault.h"

struct vm;

struct dest_stats {
	uint64_t pages; /* pages placed */
	uint64_t zero_pages;
	uint64_t bytes; /* bytes read */
	uint32_t rounds;
	uint64_t switch_to_run_ns;
};

struct dest {
	int listen_fd;	    /* not owned */
	int stop_fd;	    /* not owned: readable = give up waiting */
	uint64_t max_mem;   /* refuse VMs with more RAM */
	struct net_conn c;  /* bulk channel */
	struct net_conn uc; /* urgent channel: page requests out, answers in */
	struct vm *vm;	    /* built here; handed to the caller on success */
	struct guest_spec spec;
	struct dest_stats st;
	uint64_t run_ns; /* when the vCPUs started */
	bool refused;	 /* a REFUSE went out: no ERROR after it */
	/* post-copy */
	bool postcopy;	      /* the VM runs here while pages still arrive */
	struct bitmap needed; /* pages the source still holds (PAGEMAP) */
	struct fault fault;
	struct bitmap written; /* pages written here before the switch (vm_new, pre-copy) */
	uint64_t session;      /* of the migration in progress, to accept its reconnection */
	pthread_t uthread;
	bool ustarted;
	uint8_t urx[PROTO_PAGES_HDR + 8 + PROTO_PAGE_SIZE];
	uint8_t rx[PROTO_FRAME_MAX];
	uint8_t scratch[PROTO_BATCH_MAX * PROTO_PAGE_SIZE];
	char why[256];
};

/*
 * Accept one source and receive its VM until it runs here. On success
 * d->vm is running and owned by the caller; the connection stays open for
 * dest_finish(). On failure returns -errno with d->why set and frees
 * everything it built.
 */
int dest_receive(struct dest *d) __must_check;
/*
 * After a post-copy switch-over (d->postcopy): receive pushed pages until
 * the source is done and every page is here, then tell it so and stop
 * faulting. Returns 0 or -errno (the guest then waits for pages that will
 * not come: recovery is not implemented yet).
 */
int dest_postcopy(struct dest *d) __must_check;
/* Tell the source how the guest runs here (after ~1 s), then close. */
void dest_finish(struct dest *d);

#endif
