// SPDX-License-Identifier: MIT
/*
 * The architecture file: CPUID, the GDT/TSS/page tables of the test guests
 * and the CPL-3 long-mode entry state (PLATFORM.md); x86_tsc.c has the TSC
 * frequency. Guest code runs at CPL 3 so that it runs natively under PVM as
 * well as on hardware KVM; there is no IDT, so any guest exception ends in
 * a triple fault, which the vCPU loop reports.
 */
#define LOG_PREFIX "x86: "
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "guest/abi.h"
#include "src/log.h"
#include "src/vcpu.h"
#include "src/vm.h"
#include "src/vmstate.h"

#define CR0_PE		  (1ULL << 0)
#define CR0_MP		  (1ULL << 1)
#define CR0_ET		  (1ULL << 4)
#define CR0_NE		  (1ULL << 5)
#define CR0_WP		  (1ULL << 16)
#define CR0_AM		  (1ULL << 18)
#define CR0_PG		  (1ULL << 31)
#define CR4_PAE		  (1ULL << 5)
#define CR4_OSFXSR	  (1ULL << 9)
#define CR4_OSXMMEXCPT	  (1ULL << 10)
#define CR4_OSXSAVE	  (1ULL << 18)
#define EFER_SCE	  (1ULL << 0)
#define EFER_LME	  (1ULL << 8)
#define EFER_LMA	  (1ULL << 10)
#define EFER_NXE	  (1ULL << 11)
#define MSR_STAR	  0xc0000081
#define PTE_P		  0x1ULL
#define PTE_RW		  0x2ULL
#define PTE_US		  0x4ULL
#define PTE_PS		  0x80ULL
#define SEL_USER_DS	  0x2b
#define SEL_USER_CS	  0x33
#define SEL_TSS		  0x40
#define CPUID_1_ECX_XSAVE (1u << 26)
#define CPUID_1_ECX_AVX	  (1u << 28)
#define CPUID_MAX_ENTRIES 256

/* GDT, Linux layout: kernel CS/DS, user32 CS, user DS, user CS, then the TSS at 0x40. */
static const uint64_t gdt[] = {
	0,
	0x00af9b000000ffffULL, /* 0x08 kernel code 64 */
	0x00cf93000000ffffULL, /* 0x10 kernel data */
	0,
	0x00cffb000000ffffULL, /* 0x20 user code 32 */
	0x00cff3000000ffffULL, /* 0x28 user data */
	0x00affb000000ffffULL, /* 0x30 user code 64 */
	0,
	0, /* 0x40 TSS, 16 bytes, filled in */
	0,
};

/* MSRs KVM saves and restores; PVM's own (0x4b564df0..ff) are not listed. */
static int msr_list(struct vm *vm, char *why, size_t whylen)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *l;

	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) && errno != E2BIG) {
		snprintf(why, whylen, "KVM_GET_MSR_INDEX_LIST failed: %s", strerror(errno));
		return -errno;
	}
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l)) {
		int err = -errno;

		snprintf(why, whylen, "KVM_GET_MSR_INDEX_LIST failed: %s", strerror(-err));
		free(l);
		return err;
	}
	vm->msrs = l;
	return 0;
}

int vm_arch_init(struct vm *vm, char *why, size_t whylen)
{
	struct kvm_cpuid2 *c;
	size_t sz = sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);

	c = calloc(1, sz);
	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c)) {
		int err = -errno;

		snprintf(why, whylen, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-err));
		free(c);
		return err;
	}
	vm->cpuid = c;
	return msr_list(vm, why, whylen);
}

void vm_arch_exit(struct vm *vm)
{
	free(vm->cpuid);
	vm->cpuid = NULL;
	free(vm->msrs);
	vm->msrs = NULL;
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
		     c->entries[i].index == idx))
			return &c->entries[i];
	return NULL;
}

static uint32_t cpuid_1_ecx(struct vm *vm)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 1, 0);

	return e ? e->ecx : 0;
}

/* Identity map [0, ram) and the device window's 2 MiB with user-accessible 2 MiB pages. */
static int build_page_tables(struct vm *vm)
{
	uint64_t ram_gib = DIV_ROUND_UP(vm->mem.size, 1ULL << 30);
	uint64_t pd_base = HM_PGTABLE_GPA + 2 * HM_PAGE_SIZE;
	uint64_t win_pd = pd_base + ram_gib * HM_PAGE_SIZE;
	uint64_t *pml4 = mem_gpa_to_hva(&vm->mem, HM_PGTABLE_GPA, HM_PAGE_SIZE);
	uint64_t *pdpt = mem_gpa_to_hva(&vm->mem, HM_PGTABLE_GPA + HM_PAGE_SIZE, HM_PAGE_SIZE);
	uint64_t *pd = mem_gpa_to_hva(&vm->mem, pd_base, (ram_gib + 1) * HM_PAGE_SIZE);
	uint64_t two_mb = 2ULL << 20;

	if (!pml4 || !pdpt || !pd || win_pd + HM_PAGE_SIZE > HM_PGTABLE_END)
		return -E2BIG;
	pml4[0] = (HM_PGTABLE_GPA + HM_PAGE_SIZE) | PTE_P | PTE_RW | PTE_US;
	for (uint64_t g = 0; g < ram_gib; g++)
		pdpt[g] = (pd_base + g * HM_PAGE_SIZE) | PTE_P | PTE_RW | PTE_US;
	for (uint64_t a = 0; a < ALIGN_UP(vm->mem.size, two_mb); a += two_mb)
		pd[a / two_mb] = a | PTE_P | PTE_RW | PTE_US | PTE_PS;
	pdpt[HM_DEVWIN_GPA >> 30] = win_pd | PTE_P | PTE_RW | PTE_US;
	pd[ram_gib * 512 + ((HM_DEVWIN_GPA >> 21) & 511)] =
	    (HM_DEVWIN_GPA & ~(two_mb - 1)) | PTE_P | PTE_RW | PTE_US | PTE_PS;
	return 0;
}

int vm_arch_setup_memory(struct vm *vm)
{
	uint64_t *g = mem_gpa_to_hva(&vm->mem, HM_GDT_GPA, sizeof(gdt));
	uint64_t tss_lo;

	if (!g || !mem_range_ok(&vm->mem, HM_TSS_GPA, HM_PAGE_SIZE))
		return -E2BIG;
	memcpy(g, gdt, sizeof(gdt));
	/* 64-bit available TSS descriptor: limit 0x67, type 9, present */
	tss_lo = 0x67 | ((HM_TSS_GPA & 0xffffff) << 16) | (0x89ULL << 40) |
		 (((HM_TSS_GPA >> 24) & 0xff) << 56);
	g[SEL_TSS / 8] = tss_lo;
	g[SEL_TSS / 8 + 1] = HM_TSS_GPA >> 32;
	return build_page_tables(vm);
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t l, uint8_t db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 3;
	s->db = db;
	s->s = 1;
	s->l = l;
	s->g = 1;
}

static int set_sregs(struct vm *vm, struct vcpu *v)
{
	struct kvm_sregs sr;

	if (ioctl(v->fd, KVM_GET_SREGS, &sr))
		return -errno;
	seg(&sr.cs, SEL_USER_CS, 11, 1, 0);
	seg(&sr.ss, SEL_USER_DS, 3, 0, 1);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss;
	memset(&sr.tr, 0, sizeof(sr.tr));
	sr.tr.selector = SEL_TSS;
	sr.tr.base = HM_TSS_GPA;
	sr.tr.limit = 0x67;
	sr.tr.type = 11;
	sr.tr.present = 1;
	memset(&sr.ldt, 0, sizeof(sr.ldt));
	sr.ldt.unusable = 1;
	sr.gdt.base = HM_GDT_GPA;
	sr.gdt.limit = sizeof(gdt) - 1;
	sr.idt.base = 0;
	sr.idt.limit = 0;
	sr.cr0 = CR0_PG | CR0_AM | CR0_WP | CR0_NE | CR0_ET | CR0_MP | CR0_PE;
	sr.cr3 = HM_PGTABLE_GPA;
	sr.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	if (cpuid_1_ecx(vm) & CPUID_1_ECX_XSAVE)
		sr.cr4 |= CR4_OSXSAVE;
	sr.efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
	if (ioctl(v->fd, KVM_SET_SREGS, &sr))
		return -errno;
	return 0;
}

static int set_regs(struct vcpu *v)
{
	struct kvm_regs r;

	memset(&r, 0, sizeof(r));
	r.rip = HM_IMAGE_GPA;
	r.rsp = HM_STACK_GPA + (v->id + 1) * HM_STACK_SIZE;
	r.rdi = v->id;
	r.rsi = HM_BOOTINFO_GPA;
	r.rflags = 0x202;
	if (ioctl(v->fd, KVM_SET_REGS, &r))
		return -errno;
	return 0;
}

static int set_xcr0(struct vm *vm, struct vcpu *v)
{
	struct kvm_xcrs x;
	uint32_t ecx = cpuid_1_ecx(vm);

	if (!(ecx & CPUID_1_ECX_XSAVE))
		return 0;
	memset(&x, 0, sizeof(x));
	x.nr_xcrs = 1;
	x.xcrs[0].xcr = 0;
	x.xcrs[0].value = (ecx & CPUID_1_ECX_AVX) ? 0x7 : 0x3;
	if (ioctl(v->fd, KVM_SET_XCRS, &x))
		return -errno;
	return 0;
}

static int set_msrs(struct vcpu *v)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e[0].index = MSR_STAR;
	m.e[0].data = 0x0023001000000000ULL;
	if (ioctl(v->fd, KVM_SET_MSRS, &m) != 1)
		return -EIO;
	return 0;
}

/* Per-vCPU CPUID: the supported set with this vCPU's APIC ID. */
static int set_cpuid(struct vm *vm, struct vcpu *v)
{
	struct kvm_cpuid_entry2 *e;

	e = cpuid_find(vm->cpuid, 1, 0);
	if (e)
		e->ebx = (e->ebx & 0x00ffffff) | (v->id << 24);
	for (uint32_t i = 0; i < vm->cpuid->nent; i++) {
		e = &vm->cpuid->entries[i];
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = v->id;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, vm->cpuid))
		return -errno;
	return 0;
}

int vm_arch_vcpu_init(struct vm *vm, struct vcpu *v, char *why, size_t whylen)
{
	const char *step = "KVM_SET_CPUID2";
	int err;

	err = set_cpuid(vm, v);
	if (!err && !vm->tsc_khz)
		vm->tsc_khz = vm_arch_tsc_khz(v->fd);
	if (!err)
		step = "KVM_SET_SREGS", err = set_sregs(vm, v);
	if (!err)
		step = "KVM_SET_REGS", err = set_regs(v);
	if (!err)
		step = "KVM_SET_XCRS", err = set_xcr0(vm, v);
	if (!err)
		step = "KVM_SET_MSRS", err = set_msrs(v);
	if (err)
		snprintf(why, whylen, "vcpu %u: %s failed: %s", v->id, step, strerror(-err));
	return err;
}

/* ---- state save and restore ---------------------------------------------- */

#define MSR_IA32_TSC 0x10
#define MAX_MSRS     256

struct msrs_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[MAX_MSRS];
};

/* KVM_GET_MSRS stops at the first MSR it cannot read: skip it and go on. */
static int save_msrs(struct vm *vm, struct vcpu *v, struct msrs_buf *m)
{
	uint32_t n = 0;
	uint32_t i = 0;

	while (i < vm->msrs->nmsrs && n < MAX_MSRS) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e[MAX_MSRS];
		} q;
		uint32_t want = min_t(uint32_t, vm->msrs->nmsrs - i, MAX_MSRS - n);
		int got;

		memset(&q, 0, sizeof(q));
		q.hdr.nmsrs = want;
		for (uint32_t k = 0; k < want; k++)
			q.e[k].index = vm->msrs->indices[i + k];
		got = ioctl(v->fd, KVM_GET_MSRS, &q);
		if (got < 0)
			return -errno;
		memcpy(&m->e[n], q.e, (size_t)got * sizeof(q.e[0]));
		n += (uint32_t)got;
		i += (uint32_t)got + ((uint32_t)got < want); /* skip the unreadable one */
	}
	m->hdr.nmsrs = n;
	return 0;
}

static int save_vcpu(struct vm *vm, struct vcpu *v, struct vmstate_buf *b, const char **step)
{
	union {
		struct kvm_regs regs;
		struct kvm_sregs sregs;
		struct kvm_xcrs xcrs;
		struct kvm_xsave xsave;
		struct kvm_vcpu_events ev;
		struct kvm_debugregs dbg;
		struct kvm_mp_state mp;
		struct msrs_buf msrs;
	} *u = malloc(sizeof(*u));
	int err = 0;

	if (!u)
		return -ENOMEM;
#define SAVE(ioc, field, type)                                                                     \
	do {                                                                                       \
		*step = #ioc;                                                                      \
		if (!err && ioctl(v->fd, ioc, &u->field))                                          \
			err = -errno;                                                              \
		if (!err)                                                                          \
			vmstate_put(b, type, v->id, &u->field, sizeof(u->field));                  \
	} while (0)
	SAVE(KVM_GET_SREGS, sregs, VS_SREGS);
	SAVE(KVM_GET_REGS, regs, VS_REGS);
	if (cpuid_1_ecx(vm) & CPUID_1_ECX_XSAVE)
		SAVE(KVM_GET_XCRS, xcrs, VS_XCRS);
	SAVE(KVM_GET_XSAVE, xsave, VS_XSAVE);
	*step = "KVM_GET_MSRS";
	if (!err)
		err = save_msrs(vm, v, &u->msrs);
	if (!err)
		vmstate_put(
		    b, VS_MSRS, v->id, &u->msrs,
		    (uint32_t)(sizeof(u->msrs.hdr) + u->msrs.hdr.nmsrs * sizeof(u->msrs.e[0])));
	SAVE(KVM_GET_VCPU_EVENTS, ev, VS_EVENTS);
	SAVE(KVM_GET_DEBUGREGS, dbg, VS_DEBUGREGS);
	SAVE(KVM_GET_MP_STATE, mp, VS_MPSTATE);
#undef SAVE
	free(u);
	return err;
}

int vm_arch_save(struct vm *vm, struct vmstate_buf *b, char *why, size_t whylen)
{
	struct kvm_clock_data clock;
	const char *step = "";
	int err = 0;

	for (unsigned int i = 0; i < vm->nr_vcpus && !err; i++)
		err = save_vcpu(vm, vm->vcpus[i], b, &step);
	memset(&clock, 0, sizeof(clock));
	if (!err && !ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock))
		vmstate_put(b, VS_CLOCK, VMSTATE_VM_CPU, &clock, sizeof(clock));
	if (!err && b->overflow)
		err = -E2BIG, step = "state buffer";
	if (err)
		snprintf(why, whylen, "saving vCPU state: %s failed: %s", step, strerror(-err));
	return err;
}

/* KVM_SET_MSRS stops at the first MSR it refuses (e.g. the async-PF ack without an irqchip): skip
 * it. */
static int restore_msrs(struct vm *vm, struct vcpu *v, const struct vmstate_rec *r, uint64_t adv)
{
	struct msrs_buf *m = malloc(sizeof(*m));
	struct msrs_buf *q = malloc(sizeof(*q));
	uint32_t n;
	int err = 0;

	if (!m || !q) {
		err = -ENOMEM;
		goto out;
	}
	memset(m, 0, sizeof(*m));
	memcpy(m, r->data, min_t(size_t, r->len, sizeof(*m)));
	n = m->hdr.nmsrs;
	if (n > MAX_MSRS || r->len != sizeof(m->hdr) + n * sizeof(m->e[0])) {
		err = -EBADMSG;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		if (m->e[i].index == MSR_IA32_TSC)
			m->e[i].data += adv * vm->tsc_khz / 1000000;
	for (uint32_t start = 0; start < n;) {
		int got;

		memset(q, 0, sizeof(*q));
		q->hdr.nmsrs = n - start;
		memcpy(q->e, &m->e[start], (n - start) * sizeof(q->e[0]));
		got = ioctl(v->fd, KVM_SET_MSRS, q);
		if (got < 0) {
			err = -errno;
			goto out;
		}
		start += (uint32_t)got;
		if (start < n)
			hm_dbg("vcpu %u: MSR 0x%x not restored", v->id, m->e[start++].index);
	}
out:
	free(q);
	free(m);
	return err;
}

/* Expected payload size of each fixed-size record. */
static size_t rec_size(uint32_t type)
{
	switch (type) {
	case VS_REGS:
		return sizeof(struct kvm_regs);
	case VS_SREGS:
		return sizeof(struct kvm_sregs);
	case VS_XCRS:
		return sizeof(struct kvm_xcrs);
	case VS_XSAVE:
		return sizeof(struct kvm_xsave);
	case VS_EVENTS:
		return sizeof(struct kvm_vcpu_events);
	case VS_DEBUGREGS:
		return sizeof(struct kvm_debugregs);
	case VS_MPSTATE:
		return sizeof(struct kvm_mp_state);
	case VS_CLOCK:
		return sizeof(struct kvm_clock_data);
	default:
		return 0;
	}
}

static unsigned long set_ioctl(uint32_t type)
{
	switch (type) {
	case VS_REGS:
		return KVM_SET_REGS;
	case VS_SREGS:
		return KVM_SET_SREGS;
	case VS_XCRS:
		return KVM_SET_XCRS;
	case VS_XSAVE:
		return KVM_SET_XSAVE;
	case VS_EVENTS:
		return KVM_SET_VCPU_EVENTS;
	case VS_DEBUGREGS:
		return KVM_SET_DEBUGREGS;
	case VS_MPSTATE:
		return KVM_SET_MP_STATE;
	default:
		return KVM_SET_CLOCK;
	}
}

int vm_arch_restore(struct vm *vm, const struct vmstate_rec *r, uint64_t tsc_advance_ns, char *why,
		    size_t whylen)
{
	size_t want = rec_size(r->type);
	uint8_t buf[sizeof(struct kvm_xsave)] __attribute__((aligned(16)));
	int fd;
	int err;

	if (r->type == VS_MSRS || want) {
		if (r->type == VS_CLOCK ? r->cpu != VMSTATE_VM_CPU : r->cpu >= vm->nr_vcpus) {
			snprintf(why, whylen, "state record %u names vCPU %u, which does not exist",
				 r->type, r->cpu);
			return -EBADMSG;
		}
	}
	if (r->type == VS_MSRS) {
		err = restore_msrs(vm, vm->vcpus[r->cpu], r, tsc_advance_ns);
		if (err)
			snprintf(why, whylen, "restoring MSRs of vCPU %u: %s", r->cpu,
				 strerror(-err));
		return err;
	}
	if (!want)
		return 1;
	if (r->len != want) {
		snprintf(why, whylen, "state record %u has %u bytes, expected %zu", r->type, r->len,
			 want);
		return -EBADMSG;
	}
	memcpy(buf, r->data, want);
	fd = r->type == VS_CLOCK ? vm->vm_fd : vm->vcpus[r->cpu]->fd;
	if (r->type == VS_CLOCK)
		((struct kvm_clock_data *)buf)->flags = 0;
	if (ioctl(fd, set_ioctl(r->type), buf)) {
		err = -errno;
		snprintf(why, whylen, "restoring state record %u of vCPU %u: %s", r->type, r->cpu,
			 strerror(-err));
		return err;
	}
	return 0;
}

void vm_arch_features(struct vm *vm, uint32_t *w, unsigned int n)
{
	static const struct {
		uint32_t fn;
		uint32_t idx;
		int reg; /* 0 eax 1 ebx 2 ecx 3 edx */
	} words[] = {
		{ 1, 0, 2 }, { 1, 0, 3 },   { 7, 0, 1 },	  { 7, 0, 2 },
		{ 7, 0, 3 }, { 0xd, 1, 0 }, { 0x80000001, 0, 2 }, { 0x80000001, 0, 3 },
	};

	for (unsigned int i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e =
		    i < ARRAY_SIZE(words) ? cpuid_find(vm->cpuid, words[i].fn, words[i].idx) : NULL;
		uint32_t regs[4] = { 0 };

		if (e) {
			regs[0] = e->eax;
			regs[1] = e->ebx;
			regs[2] = e->ecx;
			regs[3] = e->edx;
		}
		w[i] = e ? regs[words[i].reg] : 0;
	}
	/* leaf 1 ECX bit 27 (OSXSAVE) mirrors CR4 and leaf 1 EBX holds APIC IDs: not features */
	if (n > 0)
		w[0] &= ~(1u << 27);
}
