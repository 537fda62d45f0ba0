/* SPDX-License-Identifier: MIT */
/*
 * The device window: an unbacked guest-physical page (HM_DEVWIN_GPA) whose
 * loads and stores reach the VMM as MMIO exits. It carries console bytes,
 * progress reports, verify verdicts, "what should I do now" polls and
 * requests to block an idle vCPU (HLT is privileged at CPL 3).
 *
 * Called from vCPU threads (devwin_mmio) and from the control loop
 * (commands, verify, reads); all state is under one mutex.
 */
#ifndef HM_DEVWIN_H
#define HM_DEVWIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "guest/abi.h"
#include "src/util.h"

struct devwin_verdict {
	int err;		/* 0, or -errno when the verify could not complete */
	bool ok;		/* every vCPU reported no bad page */
	uint64_t bad;		/* bad pages over all vCPUs */
	uint64_t first_bad_gfn; /* lowest bad guest page frame, HM_NO_PAGE if none */
	uint64_t pages;		/* pages (and I/O records) checked */
	uint64_t ns;		/* request to last report */
};

/* Called once per verify, from the vCPU thread that completes it, lock not held. */
typedef void (*devwin_verify_cb)(void *arg, const struct devwin_verdict *v);

struct devwin_vcpu {
	uint64_t units; /* cumulative work units last reported */
	uint64_t last_report_ns;
	uint32_t pending; /* bitmask of (1 << enum hm_cmd) */
	bool verifying;	  /* verify asked, verdict not in yet */
	uint64_t v_bad;
	uint64_t v_first;
	uint64_t v_pages;
};

struct devwin {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int nr_vcpus;
	struct devwin_vcpu cpu[HM_MAX_VCPUS];
	uint64_t wake_gen;	  /* bumped by devwin_wake: blocked vCPUs return */
	uint64_t io_seen;	  /* I/O records the guest checked */
	uint64_t max_gap_ns;	  /* longest gap between two progress reports of a vCPU */
	uint64_t first_report_ns; /* monotonic time of the first progress report, 0 = none */
	uint64_t tsc_gap;	  /* longest TSC jump a vCPU saw between two steps (ticks) */
	/* verify in flight */
	unsigned int v_waiting;
	struct devwin_verdict v_acc;
	uint64_t v_start_ns;
	devwin_verify_cb v_cb;
	void *v_arg;
	/* console line being assembled (vCPU 0..n share it) */
	char con[256];
	size_t con_len;
};

enum devwin_result {
	DEVWIN_CONTINUE = 0,
	DEVWIN_EXIT = 1, /* the guest's main returned on this vCPU */
};

int devwin_init(struct devwin *dw, unsigned int nr_vcpus) __must_check;
void devwin_exit(struct devwin *dw);
/*
 * Handle one access at @off into the window from vCPU @cpu. Loads fill
 * @data. Returns enum devwin_result, or -errno for a guest error, with a
 * description in *why (static string).
 */
int devwin_mmio(struct devwin *dw, unsigned int cpu, uint64_t off, bool is_write, uint8_t *data,
		uint32_t len, const char **why);
/* Queue @cmd for every vCPU and wake blocked ones. */
void devwin_command(struct devwin *dw, enum hm_cmd cmd);
/* Wake every vCPU blocked in HM_REG_BLOCK (pause, stop). */
void devwin_wake(struct devwin *dw);
/*
 * Ask every vCPU to verify; @cb gets the combined verdict. -EBUSY when a
 * verify is already in flight.
 */
int devwin_verify_start(struct devwin *dw, devwin_verify_cb cb, void *arg) __must_check;
/* Forget the callback of the verify in flight (its requester gave up). */
void devwin_verify_cancel(struct devwin *dw);
/* Sum of the work units every vCPU has reported. */
uint64_t devwin_units(struct devwin *dw);
uint64_t devwin_io_seen(struct devwin *dw);
/* Monotonic time of the guest's first progress report, 0 before it. */
uint64_t devwin_first_report_ns(struct devwin *dw);
/* Longest TSC jump (ticks) a vCPU saw between two of its steps. */
uint64_t devwin_tsc_gap(struct devwin *dw);
/* Longest gap between two progress reports of one vCPU since the last reset. */
uint64_t devwin_max_gap_ns(struct devwin *dw, bool reset);

#endif
