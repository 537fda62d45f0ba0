// SPDX-License-Identifier: MIT
/* The control command `trace` (src/vmctl_trace.h). */
#define LOG_PREFIX "trace: "
#include "src/vmctl_trace.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "src/compress.h"
#include "src/control.h"
#include "src/dirty.h"
#include "src/json.h"
#include "src/log.h"
#include "src/probe.h"
#include "src/vm.h"
#include "src/vmctl.h"

/* epochs long enough for the 30 s window once a trace lasts that long */
#define LONG_TRACE_S  30
#define LONG_EPOCH_MS 31000
#define EPOCH_MS      10000
/* zero pages are counted only up to this many resident pages (4 GiB, ~0.3 s) */
#define ZERO_SCAN_MAX (1ULL << 20)

struct vmctl_trace {
	struct event_base *base;
	struct vm *vm;	  /* not owned */
	struct vmctl *vc; /* not owned */
	struct event *tick_ev;
	struct ctl_req *req; /* the running trace's requester, NULL when none */
	struct probe *probe; /* owned while a trace runs */
	uint64_t t0_ns;
	uint64_t seconds;
	uint64_t samples;
};

static void tick_cb(evutil_socket_t fd, short what, void *arg);

struct vmctl_trace *vmctl_trace_new(struct event_base *base, struct vm *vm, struct vmctl *vc)
{
	struct vmctl_trace *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->base = base;
	t->vm = vm;
	t->vc = vc;
	t->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, t);
	if (!t->tick_ev) {
		free(t);
		return NULL;
	}
	return t;
}

/* End the trace: tracking off, then the final line (an error when @err is set). */
static void finish(struct vmctl_trace *t, const char *err)
{
	char buf[128];

	event_del(t->tick_ev);
	probe_close(t->probe);
	t->probe = NULL;
	if (!t->req)
		return;
	if (err) {
		control_reply_error(t->req, "%s", err);
	} else {
		snprintf(buf, sizeof(buf), "{\"ok\":true,\"type\":\"done\",\"samples\":%llu}",
			 (unsigned long long)t->samples);
		control_reply(t->req, buf);
	}
	t->req = NULL;
}

void vmctl_trace_stop(struct vmctl_trace *t, const char *why)
{
	if (t && t->probe) {
		hm_info("trace ended: %s", why);
		finish(t, why);
	}
}

void vmctl_trace_free(struct vmctl_trace *t)
{
	if (!t)
		return;
	vmctl_trace_stop(t, "the VM is going away");
	event_free(t->tick_ev);
	free(t);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vmctl_trace *t = arg;
	struct probe_sample s;
	char buf[2048];
	char err[160];
	struct json_out j;
	int e = probe_sample(t->probe, &s);

	(void)fd, (void)what;
	if (e) {
		snprintf(err, sizeof(err), "the measurement failed: %s", strerror(-e));
		finish(t, err);
		return;
	}
	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_str(&j, "type", "sample");
	json_dbl(&j, "t_s", (double)(s.t_ns - t->t0_ns) / 1e9, 3);
	probe_sample_json(&s, &j);
	json_obj_end(&j);
	if (json_done(&j))
		control_notify(t->req, buf);
	t->samples++;
	if (t->samples >= t->seconds)
		finish(t, NULL);
}

/* Pages [first, first + n) by mincore: add the resident ones and those all zero. */
static int count_chunk(const struct guest_mem *gm, uint64_t first, uint64_t n, unsigned char *vec,
		       int64_t *res, int64_t *zero)
{
	if (mincore(gm->hva + first * HM_PAGE_SIZE, n * HM_PAGE_SIZE, vec))
		return -errno;
	for (uint64_t i = 0; i < n; i++) {
		if (!(vec[i] & 1))
			continue;
		(*res)++;
		/* only pages already backed: reading a hole would allocate it */
		if (*zero >= 0 && compress_page_is_zero(gm->hva + (first + i) * HM_PAGE_SIZE))
			(*zero)++;
	}
	if (*zero >= 0 && (uint64_t)*res > ZERO_SCAN_MAX)
		*zero = -1;
	return 0;
}

/* Resident pages (-errno on failure), and how many are all zero (-1: too many to scan). */
static int64_t resident(struct vm *vm, int64_t *zero)
{
	const uint64_t chunk = 1ULL << 18;
	const struct guest_mem *gm = &vm->mem;
	unsigned char *vec = malloc(chunk);
	int64_t res = 0;
	int err = 0;

	*zero = 0;
	if (!vec)
		return -ENOMEM;
	for (uint64_t first = 0; first < gm->pages && !err; first += chunk)
		err = count_chunk(gm, first, min_t(uint64_t, chunk, gm->pages - first), vec, &res,
				  zero);
	free(vec);
	return err ? err : res;
}

static void vm_line(struct vmctl_trace *t, const struct probe_sample *s)
{
	char buf[1024];
	struct json_out j;
	int64_t zero;
	int64_t res = resident(t->vm, &zero);

	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_str(&j, "type", "vm");
	json_u64(&j, "ram_bytes", t->vm->mem.size);
	if (res >= 0)
		json_i64(&j, "resident_pages", res);
	if (res >= 0 && zero >= 0)
		json_i64(&j, "zero_pages", zero);
	json_u64(&j, "vcpus", t->vm->nr_vcpus);
	json_str(&j, "tracking", s->tracking);
	json_str(&j, "source", s->source);
	if (s->why_fallback[0])
		json_str(&j, "fallback_reason", s->why_fallback);
	else
		json_null(&j, "fallback_reason");
	json_obj_end(&j);
	if (json_done(&j))
		control_notify(t->req, buf);
}

/* The request's members; NULL or a reason for the requester. */
static const char *trace_params(const struct json_field *f, size_t n, uint64_t *secs, bool *bpf)
{
	const struct json_field *x = json_find(f, n, "seconds");
	const struct json_field *b = json_find(f, n, "bpf");

	*secs = 10;
	*bpf = true;
	if (x && (x->type != JSON_NUMBER || x->num < 1 || x->num > VMCTL_TRACE_MAX_S ||
		  x->num != (double)(uint64_t)x->num))
		return "seconds must be a whole number from 1 to 3600";
	if (x)
		*secs = (uint64_t)x->num;
	if (b && b->type != JSON_BOOL)
		return "bpf must be true or false";
	if (b)
		*bpf = b->b;
	return NULL;
}

static const char *why_not(struct vmctl_trace *t)
{
	const char *arriving = vmctl_arriving(t->vc);

	if (t->req)
		return "a trace is already running";
	if (arriving)
		return arriving;
	if (vmctl_unsafe_to_stop(t->vc))
		return "a migration is running or the VM is fenced: trace after it (a migration "
		       "records what its probe saw with migrate --record)";
	if (vm_get_state(t->vm) != VM_RUNNING)
		return "the VM is not running";
	return NULL;
}

static int trace_start(struct vmctl_trace *t, bool bpf, char *why, size_t whylen)
{
	struct timeval tv = { 1, 0 };
	struct probe_sample s;
	int err;

	err = probe_open_flags(&t->probe, t->vm, bpf ? 0 : PROBE_NO_BPF, NULL, 0);
	if (err) {
		snprintf(why, whylen, "cannot make the probe: %s", strerror(-err));
		return err;
	}
	probe_set_epoch_ms(t->probe, t->seconds >= LONG_TRACE_S ? LONG_EPOCH_MS : EPOCH_MS);
	err = probe_measure_start(t->probe);
	if (!err)
		err = probe_sample(t->probe, &s);
	if (!err)
		err = event_add(t->tick_ev, &tv) ? -ENOMEM : 0;
	if (err) {
		snprintf(why, whylen, "cannot start measuring: %s", strerror(-err));
		probe_close(t->probe);
		t->probe = NULL;
		return err;
	}
	t->t0_ns = s.t_ns;
	t->samples = 0;
	vm_line(t, &s);
	return 0;
}

static void cmd_trace(struct ctl_req *req, const struct json_field *f, size_t n, void *arg)
{
	struct vmctl_trace *t = arg;
	const char *bad = why_not(t);
	char why[192];
	bool bpf;

	if (!bad)
		bad = trace_params(f, n, &t->seconds, &bpf);
	if (bad) {
		control_reply_error(req, "%s", bad);
		return;
	}
	t->req = req;
	if (trace_start(t, bpf, why, sizeof(why))) {
		t->req = NULL;
		control_reply_error(req, "%s", why);
		return;
	}
	hm_info("tracing for %llu s (%s)", (unsigned long long)t->seconds,
		dirty_tracking_name(t->vm));
}

int vmctl_trace_attach(struct vmctl_trace *t, struct control *ctl)
{
	return control_add(ctl, "trace", cmd_trace, t);
}
