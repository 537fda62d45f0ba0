/* SPDX-License-Identifier: MIT */
/*
 * Inside the destination: helpers shared by dest.c (session, pre-copy,
 * switch-over handshake) and dest_postcopy.c. Not for use outside them.
 */
#ifndef HM_DEST_PRIV_H
#define HM_DEST_PRIV_H

#include "src/dest.h"
#include "src/proto.h"

#define DEST_IO_TIMEOUT_MS	    15000
#define DEST_POSTCOPY_IO_TIMEOUT_MS 15000
/* longer than the source's default reconnect window (30 s) */
#define DEST_RECONNECT_WAIT_MS 60000

/* Record the first failure's reason; returns @err (or -EIO). */
int dest_fail(struct dest *d, int err, const char *fmt, ...) __printf(3, 4);
/*
 * Break both connections under both sides (shutdown, under ulock): a thread
 * blocked on them returns. For shutdown and for injected link failures.
 */
void dest_cut(struct dest *d);
/* Read one bulk frame; the source's ERROR becomes -ECANCELED with its reason. */
int dest_recv(struct dest *d, struct proto_hdr *h) __must_check;
/*
 * The link broke after READY: wait (bounded) for the source of this
 * session to reconnect, tell it where we stand (STATUS) and, in
 * post-copy, what we hold. 0 or -errno.
 */
int dest_reconnect(struct dest *d, int cause) __must_check;

/* ---- dest_checks.c ---- */
/*
 * Read the VM description, check it against this host, build the VM and
 * answer ACCEPT, or REFUSE with the reason (d->refused). 0 or -errno.
 */
int dest_checks(struct dest *d) __must_check;

/* ---- dest_postcopy.c ---- */
/* Add one PAGEMAP run to the pages we are owed. */
int dest_postcopy_add_map(struct dest *d, size_t len) __must_check;
/* Before READY: discard what we are owed, register RAM with userfaultfd, start serving. */
int dest_postcopy_arm(struct dest *d) __must_check;
/* After STARTED: take pushed pages until DONE and every page is here, then COMPLETE. */
int dest_postcopy_run(struct dest *d) __must_check;
/* On a resumed session: our map of held pages, ACCEPT, urgent thread, requests again. */
int dest_postcopy_resume(struct dest *d) __must_check;
void dest_postcopy_stop_urgent(struct dest *d);
/*
 * The guest never ran here and the pages it waits for will not come (the
 * link broke before READY, or the destination shuts down): zero-fill every
 * fault so that no thread stays blocked in the kernel on a missing page
 * (restoring the state reads guest memory through KVM, and can fault).
 * Marks the VM poisoned: it must never run, READY is never sent.
 */
void dest_postcopy_unblock(struct dest *d);
/* The same whether or not the guest ran here (dest_abandon). */
void dest_postcopy_release(struct dest *d);
/* The first runs of pages still missing, as "0x10-0x1f, 0x40" (empty when none). */
void dest_postcopy_missing(struct dest *d, char *buf, size_t len);
/* Free what post-copy built (idempotent). */
void dest_postcopy_exit(struct dest *d);

#endif
