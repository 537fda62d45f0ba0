// SPDX-License-Identifier: MIT
/*
 * The destination's admission checks, before any page moves: the VM
 * description is decoded, the VM must fit this host (--max-mem, touched
 * memory against MemAvailable, hybridmig's own limits), its guest must be
 * one we can host, and every CPUID feature it was given must be offered
 * here. Then the VM is built and the source hears ACCEPT, or REFUSE with
 * the reason.
 */
#define LOG_PREFIX "dest: "
#include <errno.h>
#include <string.h>
#include "src/dest_priv.h"
#include "src/log.h"
#include "src/vcpu.h"
#include "src/vm.h"

/* Every CPUID feature bit the guest was given must be offered here. */
static int check_cpuid(struct dest *d, const struct proto_vmdesc *m)
{
	static const char *const names[PROTO_CPUID_WORDS] = {
		"1.ecx", "1.edx",     "7.ebx",		"7.ecx",
		"7.edx", "0xd.1.eax", "0x80000001.ecx", "0x80000001.edx",
	};
	uint32_t ours[PROTO_CPUID_WORDS];

	vm_arch_features(d->vm, ours, PROTO_CPUID_WORDS);
	for (int i = 0; i < PROTO_CPUID_WORDS; i++)
		if (m->cpuid[i] & ~ours[i])
			return dest_fail(
			    d, -ENOTSUP,
			    "this host lacks CPUID features the guest uses (leaf %s bits 0x%x)",
			    names[i], m->cpuid[i] & ~ours[i]);
	return 0;
}

/* Memory: guest-physical size against --max-mem, touched memory against MemAvailable. */
static int check_memory(struct dest *d, const struct proto_vmdesc *m)
{
	if (m->mem_bytes > d->p.max_mem)
		return dest_fail(d, -ENOMEM,
				 "the VM needs %llu MiB of RAM; this host accepts at most %llu MiB",
				 (unsigned long long)(m->mem_bytes >> 20),
				 (unsigned long long)(d->p.max_mem >> 20));
	if (m->mem_bytes > HM_MAX_RAM || m->nr_vcpus > HM_MAX_VCPUS)
		return dest_fail(d, -E2BIG, "the VM is larger than hybridmig supports");
	if (m->resident_bytes > m->mem_bytes)
		return dest_fail(d, -EINVAL, "the VM claims more touched memory than it has");
	if (d->p.mem_avail && m->resident_bytes > d->p.mem_avail)
		return dest_fail(d, -ENOMEM,
				 "the VM has touched %llu MiB; this host has %llu MiB available",
				 (unsigned long long)(m->resident_bytes >> 20),
				 (unsigned long long)(d->p.mem_avail >> 20));
	return 0;
}

static int build_vm(struct dest *d, const struct proto_vmdesc *m)
{
	struct vm_config cfg = { 0 };
	char why[256];
	int err = check_memory(d, m);

	if (err)
		return err;
	if (guest_spec_parse(m->spec, &d->spec, why, sizeof(why)) ||
	    guest_layout(&d->spec, m->mem_bytes, m->nr_vcpus, &cfg.boot, why, sizeof(why)))
		return dest_fail(d, -EINVAL, "cannot host this guest: %s", why);
	cfg.mem_bytes = m->mem_bytes;
	cfg.nr_vcpus = m->nr_vcpus;
	cfg.image = d->spec.type->image;
	cfg.image_size = (size_t)(d->spec.type->image_end - d->spec.type->image);
	cfg.io_rate = d->spec.io_mbps * 1000000;
	cfg.dirty = d->p.dirty; /* the ring too, where offered: the VM may migrate on from here */
	err = vcpu_signal_setup();
	if (!err)
		err = vm_new(&cfg, &d->vm, why, sizeof(why));
	if (err)
		return dest_fail(d, err, "cannot create the VM here: %s", why);
	if (m->tsc_khz &&
	    (m->tsc_khz > d->vm->tsc_khz * 101 / 100 || m->tsc_khz < d->vm->tsc_khz * 99 / 100))
		hm_warn("TSC frequency differs (source %llu kHz, here %llu kHz)",
			(unsigned long long)m->tsc_khz, (unsigned long long)d->vm->tsc_khz);
	return check_cpuid(d, m);
}

int dest_checks(struct dest *d)
{
	struct proto_vmdesc m;
	const char *why = "";
	struct proto_hdr h;
	int err = dest_recv(d, &h);

	if (err)
		return err;
	if (h.type != PROTO_VMDESC)
		return dest_fail(d, -EPROTO, "expected a VM description, got frame %u", h.type);
	err = proto_vmdesc_decode(d->rx, h.len, &m, &why);
	if (err)
		return dest_fail(d, err, "%s", why);
	err = build_vm(d, &m);
	if (!err && bitmap_init(&d->written, d->vm->mem.pages))
		err = dest_fail(d, -ENOMEM, "out of memory for the page bitmap");
	if (err) {
		uint8_t buf[PROTO_ERROR_SIZE];
		struct iovec v = { buf, sizeof(buf) };

		proto_error_encode(buf, (uint32_t)-err, d->why);
		if (net_send(&d->link.bulk, PROTO_REFUSE, 0, &v, 1))
			hm_dbg("could not send the refusal");
		d->refused = true;
		return err;
	}
	err = net_send(&d->link.bulk, PROTO_ACCEPT, 0, NULL, 0);
	return err ? dest_fail(d, err, "cannot accept: %s", strerror(-err)) : 0;
}
