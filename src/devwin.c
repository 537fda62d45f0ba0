// SPDX-License-Identifier: MIT
#define LOG_PREFIX "devwin: "
#include "src/devwin.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include "src/log.h"

/* longest a vCPU may block in one request: keeps stop and pause prompt */
#define BLOCK_MAX_NS (200 * NSEC_PER_MSEC)

int devwin_init(struct devwin *dw, unsigned int nr_vcpus)
{
	pthread_condattr_t ca;
	int err;

	memset(dw, 0, sizeof(*dw));
	if (!nr_vcpus || nr_vcpus > HM_MAX_VCPUS)
		return -EINVAL;
	dw->nr_vcpus = nr_vcpus;
	err = pthread_mutex_init(&dw->lock, NULL);
	if (err)
		return -err;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	err = pthread_cond_init(&dw->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (err) {
		pthread_mutex_destroy(&dw->lock);
		return -err;
	}
	return 0;
}

void devwin_exit(struct devwin *dw)
{
	if (!dw->nr_vcpus)
		return;
	pthread_cond_destroy(&dw->cond);
	pthread_mutex_destroy(&dw->lock);
	dw->nr_vcpus = 0;
}

static void console_byte(struct devwin *dw, uint8_t c)
{
	if (c != '\n' && dw->con_len < sizeof(dw->con) - 1) {
		dw->con[dw->con_len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
		return;
	}
	dw->con[dw->con_len] = 0;
	hm_info("guest: %s", dw->con);
	dw->con_len = 0;
}

static void progress(struct devwin *dw, struct devwin_vcpu *v, uint64_t units)
{
	uint64_t now = hm_now_ns();

	if (v->last_report_ns && now - v->last_report_ns > dw->max_gap_ns)
		dw->max_gap_ns = now - v->last_report_ns;
	v->last_report_ns = now;
	v->units = units;
	if (!dw->first_report_ns)
		dw->first_report_ns = now;
}

/* Wait up to @ns, or until a command is pending for @v or someone wakes us. */
static void block(struct devwin *dw, struct devwin_vcpu *v, uint64_t ns)
{
	uint64_t gen = dw->wake_gen;
	uint64_t deadline = hm_now_ns() + min_t(uint64_t, ns, BLOCK_MAX_NS);
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / NSEC_PER_SEC),
		.tv_nsec = (long)(deadline % NSEC_PER_SEC),
	};

	while (!v->pending && gen == dw->wake_gen) {
		if (pthread_cond_timedwait(&dw->cond, &dw->lock, &ts) == ETIMEDOUT)
			break;
	}
}

static uint64_t poll_cmd(struct devwin_vcpu *v)
{
	if (v->pending & (1u << HM_CMD_STOP))
		return HM_CMD_STOP;
	if (v->pending & (1u << HM_CMD_VERIFY)) {
		v->pending &= ~(1u << HM_CMD_VERIFY);
		return HM_CMD_VERIFY;
	}
	return HM_CMD_RUN;
}

/* Record one vCPU's verdict; returns true when it was the last one awaited. */
static bool verdict(struct devwin *dw, struct devwin_vcpu *v, uint64_t done)
{
	struct devwin_verdict *acc = &dw->v_acc;

	if (!v->verifying)
		return false;
	v->verifying = false;
	acc->bad += v->v_bad;
	acc->pages += v->v_pages;
	if (v->v_first < acc->first_bad_gfn)
		acc->first_bad_gfn = v->v_first;
	if (done != HM_VERIFY_OK || v->v_bad)
		acc->ok = false;
	return --dw->v_waiting == 0;
}

static int store(struct devwin *dw, struct devwin_vcpu *v, uint64_t off, uint64_t val,
		 const char **why)
{
	switch (off) {
	case HM_REG_CONSOLE:
		console_byte(dw, (uint8_t)val);
		return 0;
	case HM_REG_PROGRESS:
		progress(dw, v, val);
		return 0;
	case HM_REG_BLOCK:
		block(dw, v, val);
		return 0;
	case HM_REG_V_BAD:
		v->v_bad = val;
		return 0;
	case HM_REG_V_FIRST:
		v->v_first = val;
		return 0;
	case HM_REG_V_PAGES:
		v->v_pages = val;
		return 0;
	case HM_REG_IO_SEEN:
		dw->io_seen = val;
		return 0;
	case HM_REG_TSC_GAP:
		if (val > dw->tsc_gap)
			dw->tsc_gap = val;
		return 0;
	case HM_REG_PANIC:
		*why = "the guest reported an internal error (panic register)";
		return -EIO;
	case HM_REG_EXIT:
		return DEVWIN_EXIT;
	default:
		*why = "the guest wrote an unknown device-window register";
		return -EINVAL;
	}
}

static void finish_verify(struct devwin *dw)
{
	struct devwin_verdict v = dw->v_acc;
	devwin_verify_cb cb = dw->v_cb;
	void *arg = dw->v_arg;

	v.ns = hm_now_ns() - dw->v_start_ns;
	dw->v_cb = NULL;
	pthread_mutex_unlock(&dw->lock);
	if (cb)
		cb(arg, &v);
	pthread_mutex_lock(&dw->lock);
}

int devwin_mmio(struct devwin *dw, unsigned int cpu, uint64_t off, bool is_write, uint8_t *data,
		uint32_t len, const char **why)
{
	struct devwin_vcpu *v = &dw->cpu[cpu];
	uint64_t val = 0;
	int ret = 0;

	if (len != 8 || off % 8 || off >= HM_DEVWIN_REGS) {
		*why = "the guest made a malformed device-window access";
		return -EINVAL;
	}
	pthread_mutex_lock(&dw->lock);
	if (!is_write) {
		if (off == HM_REG_POLL)
			val = poll_cmd(v);
		else
			ret = -EINVAL, *why = "the guest read a write-only device-window register";
		memcpy(data, &val, 8);
	} else {
		memcpy(&val, data, 8);
		if (off == HM_REG_V_DONE) {
			if (verdict(dw, v, val))
				finish_verify(dw);
		} else {
			ret = store(dw, v, off, val, why);
		}
	}
	pthread_mutex_unlock(&dw->lock);
	return ret;
}

void devwin_command(struct devwin *dw, enum hm_cmd cmd)
{
	pthread_mutex_lock(&dw->lock);
	for (unsigned int i = 0; i < dw->nr_vcpus; i++)
		dw->cpu[i].pending |= 1u << cmd;
	pthread_cond_broadcast(&dw->cond);
	pthread_mutex_unlock(&dw->lock);
}

void devwin_wake(struct devwin *dw)
{
	pthread_mutex_lock(&dw->lock);
	dw->wake_gen++;
	pthread_cond_broadcast(&dw->cond);
	pthread_mutex_unlock(&dw->lock);
}

int devwin_verify_start(struct devwin *dw, devwin_verify_cb cb, void *arg)
{
	pthread_mutex_lock(&dw->lock);
	if (dw->v_waiting) {
		pthread_mutex_unlock(&dw->lock);
		return -EBUSY;
	}
	memset(&dw->v_acc, 0, sizeof(dw->v_acc));
	dw->v_acc.ok = true;
	dw->v_acc.first_bad_gfn = HM_NO_PAGE;
	dw->v_start_ns = hm_now_ns();
	dw->v_cb = cb;
	dw->v_arg = arg;
	dw->v_waiting = dw->nr_vcpus;
	for (unsigned int i = 0; i < dw->nr_vcpus; i++) {
		dw->cpu[i].verifying = true;
		dw->cpu[i].v_bad = 0;
		dw->cpu[i].v_first = HM_NO_PAGE;
		dw->cpu[i].v_pages = 0;
		dw->cpu[i].pending |= 1u << HM_CMD_VERIFY;
	}
	pthread_cond_broadcast(&dw->cond);
	pthread_mutex_unlock(&dw->lock);
	return 0;
}

void devwin_verify_cancel(struct devwin *dw)
{
	pthread_mutex_lock(&dw->lock);
	dw->v_cb = NULL;
	dw->v_waiting = 0;
	for (unsigned int i = 0; i < dw->nr_vcpus; i++) {
		dw->cpu[i].verifying = false;
		dw->cpu[i].pending &= ~(1u << HM_CMD_VERIFY);
	}
	pthread_mutex_unlock(&dw->lock);
}

uint64_t devwin_units(struct devwin *dw)
{
	uint64_t sum = 0;

	pthread_mutex_lock(&dw->lock);
	for (unsigned int i = 0; i < dw->nr_vcpus; i++)
		sum += dw->cpu[i].units;
	pthread_mutex_unlock(&dw->lock);
	return sum;
}

uint64_t devwin_io_seen(struct devwin *dw)
{
	uint64_t n;

	pthread_mutex_lock(&dw->lock);
	n = dw->io_seen;
	pthread_mutex_unlock(&dw->lock);
	return n;
}

uint64_t devwin_max_gap_ns(struct devwin *dw, bool reset)
{
	uint64_t gap;

	pthread_mutex_lock(&dw->lock);
	gap = dw->max_gap_ns;
	if (reset)
		dw->max_gap_ns = 0;
	pthread_mutex_unlock(&dw->lock);
	return gap;
}

uint64_t devwin_first_report_ns(struct devwin *dw)
{
	uint64_t t;

	pthread_mutex_lock(&dw->lock);
	t = dw->first_report_ns;
	pthread_mutex_unlock(&dw->lock);
	return t;
}

uint64_t devwin_tsc_gap(struct devwin *dw)
{
	uint64_t g;

	pthread_mutex_lock(&dw->lock);
	g = dw->tsc_gap;
	pthread_mutex_unlock(&dw->lock);
	return g;
}
