// SPDX-License-Identifier: MIT
/*
 * User side of bpf/probe.bpf.c (libbpf-bootstrap order): open the skeleton,
 * set rodata, size the seen bitmap, load, attach, map the histogram and the
 * bitmap; destroy with one cleanup label. Reasons for failing are phrased
 * for the operator: the probe falls back and says why.
 */
#define LOG_PREFIX "probe: "
#include "src/probe_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "bpf/probe.h"
#include "bpf/probe.skel.h"
#include "src/log.h"

struct probe_bpf {
	struct hm_probe *skel;
	uint64_t *hist; /* mmapped map: 2 halves of PROBE_BPF_NTICKS */
	size_t hist_len;
	uint64_t *seen; /* mmapped map: 2 halves of nwords */
	size_t seen_len;
	uint64_t nwords;
	enum probe_bpf_dirty which;
};

/* libbpf's own messages go to the debug log: a failure is reported once, by us. */
__attribute__((format(printf, 2, 0))) static int libbpf_log(enum libbpf_print_level level,
							    const char *fmt, va_list ap)
{
	char line[512];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	hm_dbg("libbpf: %s", line);
	return 0;
}

static void *map_mmap(struct bpf_map *m, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);

	return p == MAP_FAILED ? NULL : p;
}

static size_t page_round(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (n + pg - 1) / pg * pg;
}

static void explain(int err, const char *step, char *why, size_t whylen)
{
	if (err == -EPERM || err == -EACCES)
		snprintf(why, whylen, "%s: no CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN (%s)", step,
			 strerror(-err));
	else if (err == -ENOENT || err == -ESRCH)
		snprintf(why, whylen, "%s: tracepoint or kernel type missing (%s)", step,
			 strerror(-err));
	else
		snprintf(why, whylen, "%s: %s", step, strerror(-err));
}

/*
 * This process's PID namespace for bpf_get_ns_current_pid_tgid(), whose
 * device is the kernel's dev_t (major << 20 | minor), not stat's encoding.
 * 0, 0 (the kernel's ids) when it cannot be known.
 */
static void pidns(volatile __u64 *dev, volatile __u64 *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st)) {
		hm_dbg("no /proc/self/ns/pid (%s): filtering by the kernel's pids",
		       strerror(errno));
		return;
	}
	*dev = ((__u64)major(st.st_dev) << 20) | minor(st.st_dev);
	*ino = st.st_ino;
}

static int load(struct probe_bpf *b, uint32_t tgid, uint64_t npages, char *why, size_t whylen)
{
	struct hm_probe *s = b->skel;
	int err;

	s->rodata->tgid = tgid;
	pidns(&s->rodata->pidns_dev, &s->rodata->pidns_ino);
	s->rodata->npages = npages;
	s->rodata->nwords = b->nwords;
	bpf_program__set_autoload(s->progs.hm_set_spte, b->which == PROBE_BPF_SPTE);
	bpf_program__set_autoload(s->progs.hm_ring_push, b->which == PROBE_BPF_RING);
	err = bpf_map__set_max_entries(s->maps.seen, (uint32_t)(2 * b->nwords));
	if (!err)
		err = hm_probe__load(s);
	if (err) {
		explain(err, "loading the BPF programs", why, whylen);
		return err;
	}
	b->hist_len = page_round(2 * PROBE_BPF_NTICKS * sizeof(uint64_t));
	b->seen_len = page_round(2 * b->nwords * sizeof(uint64_t));
	b->hist = map_mmap(s->maps.hist, b->hist_len);
	b->seen = map_mmap(s->maps.seen, b->seen_len);
	if (!b->hist || !b->seen) {
		err = -errno;
		explain(err, "mapping the BPF maps", why, whylen);
		return err;
	}
	return 0;
}

static int attach(struct probe_bpf *b, char *why, size_t whylen)
{
	struct hm_probe *s = b->skel;
	struct bpf_program *dirty =
	    b->which == PROBE_BPF_RING ? s->progs.hm_ring_push : s->progs.hm_set_spte;
	struct bpf_link **dl =
	    b->which == PROBE_BPF_RING ? &s->links.hm_ring_push : &s->links.hm_set_spte;

	*dl = bpf_program__attach(dirty);
	if (!*dl) {
		explain(-errno, bpf_program__section_name(dirty), why, whylen);
		return -ENOENT;
	}
	/* the others are extras: without them the figures come from elsewhere */
	s->links.hm_runtime = bpf_program__attach(s->progs.hm_runtime);
	if (!s->links.hm_runtime)
		hm_info("sched_stat_runtime not attached (%s): vCPU time from thread clocks",
			strerror(errno));
	s->links.hm_tcp_probe = bpf_program__attach(s->progs.hm_tcp_probe);
	if (!s->links.hm_tcp_probe)
		hm_info("tcp_probe not attached (%s): no link RTT", strerror(errno));
	return 0;
}

int probe_bpf_open(struct probe_bpf **out, uint32_t tgid, uint64_t npages,
		   enum probe_bpf_dirty which, char *why, size_t whylen)
{
	struct probe_bpf *b;
	int err;

	*out = NULL;
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		snprintf(why, whylen, "no kernel BTF (/sys/kernel/btf/vmlinux: %s)",
			 strerror(errno));
		return -ENOENT;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->which = which;
	b->nwords = DIV_ROUND_UP(npages ? npages : 1, 64);
	libbpf_set_print(libbpf_log);
	b->skel = hm_probe__open();
	if (!b->skel) {
		err = -errno;
		explain(err, "opening the BPF object", why, whylen);
		goto out_free;
	}
	err = load(b, tgid, npages, why, whylen);
	if (!err)
		err = attach(b, why, whylen);
	if (err)
		goto out_free;
	*out = b;
	return 0;
out_free:
	probe_bpf_close(b);
	return err;
}

void probe_bpf_close(struct probe_bpf *b)
{
	if (!b)
		return;
	if (b->hist)
		munmap(b->hist, b->hist_len);
	if (b->seen)
		munmap(b->seen, b->seen_len);
	hm_probe__destroy(b->skel);
	free(b);
}

void probe_bpf_epoch(struct probe_bpf *b, uint64_t now_ns)
{
	uint32_t seq = __atomic_load_n(&b->skel->bss->epoch_seq, __ATOMIC_RELAXED);
	uint32_t idle = (seq + 1) & 1;

	memset(b->seen + idle * b->nwords, 0, b->nwords * sizeof(uint64_t));
	memset(b->hist + idle * PROBE_BPF_NTICKS, 0, PROBE_BPF_NTICKS * sizeof(uint64_t));
	__atomic_store_n(&b->skel->bss->epoch_start_ns[idle], now_ns, __ATOMIC_RELEASE);
	__atomic_store_n(&b->skel->bss->epoch_seq, seq + 1, __ATOMIC_RELEASE);
}

static uint32_t cur(const struct probe_bpf *b)
{
	return __atomic_load_n(&b->skel->bss->epoch_seq, __ATOMIC_ACQUIRE) & 1;
}

uint64_t probe_bpf_epoch_start(const struct probe_bpf *b)
{
	return __atomic_load_n(&b->skel->bss->epoch_start_ns[cur(b)], __ATOMIC_ACQUIRE);
}

const uint64_t *probe_bpf_hist(const struct probe_bpf *b)
{
	return b->hist + cur(b) * PROBE_BPF_NTICKS;
}

const uint64_t *probe_bpf_seen(const struct probe_bpf *b, uint64_t *nwords)
{
	*nwords = b->nwords;
	return b->seen + cur(b) * b->nwords;
}

void probe_bpf_counters(const struct probe_bpf *b, struct probe_bpf_counters *c)
{
	const struct hm_probe__bss *s = b->skel->bss;

	c->dirty_events = __atomic_load_n(
	    b->which == PROBE_BPF_RING ? &s->ring_events : &s->spte_events, __ATOMIC_RELAXED);
	c->firsts = __atomic_load_n(&s->firsts, __ATOMIC_RELAXED);
	c->tcp_t_ns = __atomic_load_n(&s->tcp_t_ns, __ATOMIC_RELAXED);
	c->srtt_us = __atomic_load_n(&s->tcp_srtt_us, __ATOMIC_RELAXED);
	c->cwnd = __atomic_load_n(&s->tcp_cwnd, __ATOMIC_RELAXED);
}

int probe_bpf_add_thread(struct probe_bpf *b, uint32_t tid)
{
	uint64_t zero = 0;

	if (!b->skel->links.hm_runtime)
		return -ENOENT;
	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.vcpu_rt), &tid, &zero, BPF_NOEXIST) &&
	    errno != EEXIST)
		return -errno;
	return 0;
}

int64_t probe_bpf_run_ns(const struct probe_bpf *b)
{
	int fd = bpf_map__fd(b->skel->maps.vcpu_rt);
	uint32_t key;
	uint32_t next;
	uint64_t v;
	int64_t sum = 0;
	uint32_t *prev = NULL;

	if (!b->skel->links.hm_runtime)
		return -ENOENT;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		if (bpf_map_lookup_elem(fd, &next, &v))
			return -errno;
		sum += (int64_t)v;
		key = next;
		prev = &key;
	}
	return errno == ENOENT ? sum : -errno;
}

void probe_bpf_watch_port(struct probe_bpf *b, uint16_t port)
{
	__atomic_store_n(&b->skel->bss->watch_port, port, __ATOMIC_RELEASE);
}
