// SPDX-License-Identifier: MIT
#include "src/guest.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include "src/parse.h"

#define BLOB(n) extern const uint8_t hm_blob_##n##_start[], hm_blob_##n##_end[]
BLOB(idle);
BLOB(dirtier);
BLOB(fault);

static const struct guest_type types[] = {
	{ "idle", "waits without touching memory or spinning a host core", "", hm_blob_idle_start,
	  hm_blob_idle_end },
	{ "dirtier", "writes self-checking pages; verify proves none was lost or went stale",
	  "wss,rate,pattern,io,seed,fill,prefill", hm_blob_dirtier_start, hm_blob_dirtier_end },
	{ "fault", "misbehaves on purpose (kind=ud|pf|mmio|panic), for tests", "kind",
	  hm_blob_fault_start, hm_blob_fault_end },
};

const struct guest_type *guest_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (!strcmp(types[i].name, name))
			return &types[i];
	return NULL;
}

void guest_print_catalogue(FILE *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		fprintf(f, "  %-8s %s%s%s%s\n", types[i].name, types[i].summary,
			*types[i].params ? " [" : "", types[i].params, *types[i].params ? "]" : "");
}

static bool accepts(const struct guest_type *t, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = t->params; (p = strstr(p, key)); p += n)
		if ((p == t->params || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

static int parse_enum(const char *v, const char *const *names, size_t n, uint64_t *out)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v, names[i])) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

static int set_param(struct guest_spec *spec, const char *key, const char *val)
{
	static const char *const patterns[] = { "seq", "random", "zipf" };
	static const char *const faults[] = { "ud", "pf", "mmio", "panic" };
	uint64_t v = 0;
	int err;

	if (!strcmp(key, "wss")) {
		err = parse_size(val, &spec->wss);
		return err ? err : spec->wss >= HM_PAGE_SIZE ? 0 : -ERANGE;
	}
	if (!strcmp(key, "rate"))
		return parse_count(val, &spec->rate);
	if (!strcmp(key, "io"))
		return parse_count_range(val, 0, 100000, &spec->io_mbps);
	if (!strcmp(key, "seed"))
		return parse_count(val, &spec->seed);
	if (!strcmp(key, "fill")) {
		err = parse_count_range(val, 0, 1, &v);
		spec->fill = v;
		return err;
	}
	if (!strcmp(key, "prefill")) {
		err = parse_count_range(val, 0, 1, &v);
		spec->prefill = v;
		return err;
	}
	if (!strcmp(key, "pattern")) {
		err = parse_enum(val, patterns, ARRAY_SIZE(patterns), &v);
		spec->pattern = (enum hm_pattern)v;
		return err;
	}
	err = parse_enum(val, faults, ARRAY_SIZE(faults), &v);
	spec->fault = (enum hm_fault_kind)v;
	return err;
}

static int parse_pair(struct guest_spec *spec, char *kv, char *why, size_t whylen)
{
	char *eq = strchr(kv, '=');

	if (!eq || eq == kv || !eq[1]) {
		snprintf(why, whylen, "guest parameter '%s' is not of the form key=value", kv);
		return -EINVAL;
	}
	*eq = 0;
	if (!accepts(spec->type, kv)) {
		snprintf(why, whylen, "guest '%s' has no parameter '%s'%s%s%s", spec->type->name,
			 kv, *spec->type->params ? " (it takes: " : "", spec->type->params,
			 *spec->type->params ? ")" : "");
		return -EINVAL;
	}
	if (set_param(spec, kv, eq + 1)) {
		snprintf(why, whylen, "bad value '%s' for guest parameter '%s'", eq + 1, kv);
		return -EINVAL;
	}
	return 0;
}

int guest_spec_parse(const char *s, struct guest_spec *spec, char *why, size_t whylen)
{
	char buf[512];
	char *params;
	char *save = NULL;
	int err = 0;

	memset(spec, 0, sizeof(*spec));
	spec->wss = GUEST_DEFAULT_WSS;
	spec->seed = 1;
	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(spec->text)) {
		snprintf(why, whylen, "guest specification too long");
		return -EINVAL;
	}
	snprintf(spec->text, sizeof(spec->text), "%s", s);
	params = strchr(buf, ':');
	if (params)
		*params++ = 0;
	spec->type = guest_find(buf);
	if (!spec->type) {
		snprintf(why, whylen, "unknown guest '%s' (known: idle, dirtier, fault)", buf);
		return -EINVAL;
	}
	for (char *kv = params ? strtok_r(params, ",", &save) : NULL; kv && !err;
	     kv = strtok_r(NULL, ",", &save))
		err = parse_pair(spec, kv, why, whylen);
	return err;
}

int guest_layout(const struct guest_spec *spec, uint64_t mem, unsigned int nr_vcpus,
		 struct hm_bootinfo *bi, char *why, size_t whylen)
{
	uint64_t at = HM_DATA_GPA;
	bool dirtier = !strcmp(spec->type->name, "dirtier");
	uint64_t pages;

	memset(bi, 0, sizeof(*bi));
	if (!nr_vcpus || nr_vcpus > HM_MAX_VCPUS) {
		snprintf(why, whylen, "vCPU count must be 1 to %d", HM_MAX_VCPUS);
		return -EINVAL;
	}
	/* checked before any arithmetic on it: wss comes from the user */
	if (dirtier && spec->wss > mem) {
		snprintf(why, whylen, "working set (%llu MiB) is larger than --mem (%llu MiB)",
			 (unsigned long long)(spec->wss >> 20), (unsigned long long)(mem >> 20));
		return -E2BIG;
	}
	pages = dirtier ? DIV_ROUND_UP(spec->wss, HM_PAGE_SIZE) : 0;
	bi->nr_vcpus = nr_vcpus;
	bi->rate = spec->rate;
	bi->pattern = spec->pattern;
	bi->seed = spec->seed;
	bi->fault_kind = spec->fault;
	bi->report_ns = GUEST_REPORT_NS;
	bi->fill = spec->fill;
	bi->prefill = spec->prefill;
	if (spec->io_mbps) {
		bi->io_ctl_gpa = at;
		bi->io_ring_gpa = at + HM_PAGE_SIZE;
		bi->io_slots = GUEST_IO_SLOTS;
		at = bi->io_ring_gpa + GUEST_IO_SLOTS * HM_PAGE_SIZE;
	}
	bi->gen_gpa = at;
	at += ALIGN_UP(pages * sizeof(uint64_t), HM_PAGE_SIZE);
	bi->ws_gpa = at;
	bi->ws_pages = pages;
	at += pages * HM_PAGE_SIZE;
	if (at > mem) {
		snprintf(why, whylen,
			 "the guest needs %llu MiB of RAM but --mem gives %llu MiB "
			 "(lower wss or raise --mem)",
			 (unsigned long long)DIV_ROUND_UP(at, 1 << 20),
			 (unsigned long long)(mem >> 20));
		return -E2BIG;
	}
	return 0;
}

void guest_boot_finish(struct hm_bootinfo *bi, uint64_t tsc_khz, unsigned int nr_vcpus,
		       uint64_t ram_bytes)
{
	bi->magic = HM_BOOT_MAGIC;
	bi->tsc_khz = tsc_khz;
	bi->nr_vcpus = nr_vcpus;
	bi->ram_bytes = ram_bytes;
	bi->devwin_gpa = HM_DEVWIN_GPA;
}
