// SPDX-License-Identifier: MIT
/*
 * The kernel side of the probe (src/probe.h describes the design): every
 * guest page's first write within an epoch, from KVM's dirty-tracking
 * tracepoints, into a time histogram; vCPU run time; the migration link's
 * RTT and cwnd. Filtered to the VMM's own process (tgid, set before load).
 *
 * Dirty tracking makes a page fault (and these tracepoints fire) once per
 * page after each re-protect. An epoch starts at a re-protect; the seen
 * bitmap drops the repeats caused by later re-protects within the epoch
 * (a migration's rounds, dirty-ring resets), so each page is counted once,
 * at its first write, in the 10 ms tick since the epoch start.
 *
 * Two epochs are kept (by epoch_seq parity): user space zeroes the idle
 * half, sets its start time, then flips epoch_seq; a write racing with the
 * flip lands in the epoch it read. All programs are tp_btf (BTF typed raw
 * tracepoints): they attach without tracefs.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "probe.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* set by user space before load */
const volatile __u32 tgid = 0; /* the VMM's process, as getpid() says in its PID namespace */
/*
 * That PID namespace (/proc/self/ns/pid: device in the kernel's encoding,
 * inode); 0 = compare the kernel's own ids. A VMM in a container or any
 * other PID namespace sees ids that differ from the kernel's.
 */
const volatile __u64 pidns_dev = 0;
const volatile __u64 pidns_ino = 0;
const volatile __u64 npages = 0; /* guest RAM pages (slot 0, from gpa 0) */
const volatile __u64 nwords = 1; /* words of one epoch's seen bitmap */

/* written by user space at run time (.bss is mmapped by the skeleton) */
__u64 epoch_start_ns[2]; /* CLOCK_MONOTONIC start of each half; 0 = not armed */
__u32 epoch_seq;	 /* parity selects the current half */
__u32 watch_port;	 /* local TCP port of the migration's bulk link, 0 = none */

/* read by user space */
__u64 spte_events; /* writable sptes installed for the VMM (dirty log) */
__u64 ring_events; /* dirty ring pushes for the VMM */
__u64 firsts;	   /* pages counted (first write in their epoch) */
__u64 tcp_t_ns;	   /* last tcp_probe on the watched port */
__u32 tcp_srtt_us;
__u32 tcp_cwnd;

/* first-write histogram: [half * PROBE_BPF_NTICKS + tick] */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2 * PROBE_BPF_NTICKS);
} hist SEC(".maps");

/* pages seen this epoch, a bitmap by gfn: [half * nwords + gfn / 64]; sized at load */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} seen SEC(".maps");

/* run time in ns of the vCPU threads, by tid; user space inserts the tids */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, PROBE_BPF_MAX_VCPUS);
} vcpu_rt SEC(".maps");

/* The current thread's process and thread ids as the VMM sees them; false: not knowable. */
static __always_inline bool current_ids(__u32 *pid, __u32 *tid)
{
	struct bpf_pidns_info ns;
	__u64 id;

	if (!pidns_ino) {
		id = bpf_get_current_pid_tgid();
		*pid = (__u32)(id >> 32);
		*tid = (__u32)id;
		return true;
	}
	if (bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)))
		return false;
	*pid = ns.tgid;
	*tid = ns.pid;
	return true;
}

static __always_inline bool ours(void)
{
	__u32 pid;
	__u32 tid;

	return current_ids(&pid, &tid) && pid == tgid;
}

static __always_inline void note_page(__u64 gfn)
{
	__u32 half = *(volatile __u32 *)&epoch_seq & 1;
	__u64 start = *(volatile __u64 *)&epoch_start_ns[half];
	__u64 now = bpf_ktime_get_ns();
	__u64 bit = 1ULL << (gfn & 63);
	__u64 tick;
	__u64 *w;
	__u64 *h;
	__u32 k;

	if (!start || gfn >= npages)
		return;
	k = (__u32)(half * nwords + gfn / 64);
	w = bpf_map_lookup_elem(&seen, &k);
	if (!w || (__sync_fetch_and_or(w, bit) & bit))
		return;
	tick = now > start ? (now - start) / PROBE_BPF_TICK_NS : 0;
	if (tick >= PROBE_BPF_NTICKS)
		tick = PROBE_BPF_NTICKS - 1;
	k = (__u32)(half * PROBE_BPF_NTICKS + tick);
	h = bpf_map_lookup_elem(&hist, &k);
	if (h)
		__sync_fetch_and_add(h, 1);
	__sync_fetch_and_add(&firsts, 1);
}

/*
 * Dirty log: a leaf spte made writable. With logging on, KVM maps a page
 * writable only on a write fault (that is when it marks it dirty); read
 * faults and prefetches install it read-only. Bit 1 is the writable bit of
 * shadow and EPT sptes alike.
 */
SEC("tp_btf/kvm_mmu_set_spte")
int BPF_PROG(hm_set_spte, int level, gfn_t gfn, u64 *sptep)
{
	u64 spte = 0;

	if (!ours() || level != 1)
		return 0;
	if (bpf_probe_read_kernel(&spte, sizeof(spte), sptep) || !(spte & 2))
		return 0;
	__sync_fetch_and_add(&spte_events, 1);
	note_page(gfn);
	return 0;
}

/* Dirty ring: one push per page per reset; slot 0 (address space 0) starts at gpa 0. */
SEC("tp_btf/kvm_dirty_ring_push")
int BPF_PROG(hm_ring_push, struct kvm_dirty_ring *ring, u32 slot, u64 offset)
{
	if (!ours() || slot != 0)
		return 0;
	__sync_fetch_and_add(&ring_events, 1);
	note_page(offset);
	return 0;
}

SEC("tp_btf/sched_stat_runtime")
int BPF_PROG(hm_runtime, struct task_struct *t, u64 runtime)
{
	__u32 pid;
	__u32 tid;
	__u64 *v;

	if (pidns_ino) {
		/* namespaced ids are known for the current task only, which it nearly always is */
		if ((void *)t != (void *)bpf_get_current_task_btf() || !current_ids(&pid, &tid))
			return 0;
	} else {
		pid = (__u32)BPF_CORE_READ(t, tgid);
		tid = (__u32)BPF_CORE_READ(t, pid);
	}
	if (pid != tgid)
		return 0;
	v = bpf_map_lookup_elem(&vcpu_rt, &tid);
	if (v)
		__sync_fetch_and_add(v, runtime);
	return 0;
}

/* Fires for ACKs received in softirq context: filter by port, not by process. */
SEC("tp_btf/tcp_probe")
int BPF_PROG(hm_tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	__u32 port = *(volatile __u32 *)&watch_port;
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	if (!port || BPF_CORE_READ(sk, __sk_common.skc_num) != port)
		return 0;
	tcp_srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	tcp_cwnd = BPF_CORE_READ(tp, snd_cwnd);
	tcp_t_ns = bpf_ktime_get_ns();
	return 0;
}
