// SPDX-License-Identifier: MIT
/* The policy's recordings as JSON lines (see policy_record.h). */
#include "src/policy_record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/json.h"
#include "src/probe.h"

enum kind { K_DBL, K_U64, K_U32 };

struct in_field {
	const char *key;
	size_t off;
	enum kind kind;
};

#define IN(k, m, kind)                                                                             \
	{                                                                                          \
		k, offsetof(struct policy_input, m), kind                                          \
	}

static const struct in_field in_fields[] = {
	IN("t_s", t_s, K_DBL),
	IN("ram_pages", ram_pages, K_U64),
	IN("resident_pages", resident_pages, K_U64),
	IN("wire_ratio", wire_ratio, K_DBL),
	IN("dma_pages_per_s", dma_pages_per_s, K_DBL),
	IN("locality", locality, K_DBL),
	IN("bandwidth", bandwidth, K_DBL),
	IN("rtt_s", rtt_s, K_DBL),
	IN("vcpus", vcpus, K_U32),
	IN("state_bytes", state_bytes, K_U64),
	IN("round", round, K_U32),
	IN("remaining_pages", remaining_pages, K_U64),
	IN("inflight_bytes", inflight_bytes, K_U64),
	IN("round_s", round_s, K_DBL),
	IN("round_dirtied", round_dirtied, K_U64),
	IN("elapsed_s", elapsed_s, K_DBL),
	IN("bytes_sent", bytes_sent, K_U64),
};

void policy_record_limits(struct json_out *j, const struct policy_limits *l)
{
	double v;
	const char *k;

	for (size_t i = 0; (k = policy_config_get(l, i, true, &v)); i++)
		json_num(j, k, v);
}

int policy_record_read_limits(const struct json_field *f, size_t n, struct policy_limits *l)
{
	double v;
	const char *k;

	for (size_t i = 0; (k = policy_config_get(l, i, true, &v)); i++) {
		const struct json_field *x = json_find(f, n, k);

		if (x && (x->type != JSON_NUMBER || policy_config_set_internal(l, k, x->num)))
			return -EINVAL;
	}
	return 0;
}

void policy_record_input(struct json_out *j, const struct policy_input *in)
{
	for (size_t i = 0; i < sizeof(in_fields) / sizeof(in_fields[0]); i++) {
		const struct in_field *x = &in_fields[i];
		const char *p = (const char *)in + x->off;

		if (x->kind == K_DBL)
			json_num(j, x->key, *(const double *)p);
		else if (x->kind == K_U64)
			json_u64(j, x->key, *(const uint64_t *)p);
		else
			json_u64(j, x->key, *(const uint32_t *)p);
	}
	json_arr_begin(j, "wss_t_s");
	for (uint32_t i = 0; i < in->wss.n; i++)
		json_num(j, NULL, in->wss.t_s[i]);
	json_arr_end(j);
	json_arr_begin(j, "wss_pages");
	for (uint32_t i = 0; i < in->wss.n; i++)
		json_num(j, NULL, in->wss.pages[i]);
	json_arr_end(j);
}

/* "1,2.5,3" into @out; returns the count or -EINVAL. */
static int numbers(const char *s, double *out, uint32_t max)
{
	uint32_t n = 0;

	while (*s == ' ')
		s++;
	while (*s) {
		char *end;

		if (n == max)
			return -EINVAL;
		out[n++] = strtod(s, &end);
		if (end == s)
			return -EINVAL;
		s = end;
		while (*s == ' ' || *s == ',')
			s++;
	}
	return (int)n;
}

int policy_record_read_input(const struct json_field *f, size_t n, struct policy_input *in)
{
	const struct json_field *t = json_find(f, n, "wss_t_s");
	const struct json_field *w = json_find(f, n, "wss_pages");
	int nt, nw;

	memset(in, 0, sizeof(*in));
	for (size_t i = 0; i < sizeof(in_fields) / sizeof(in_fields[0]); i++) {
		const struct in_field *x = &in_fields[i];
		const struct json_field *v = json_find(f, n, x->key);
		char *p = (char *)in + x->off;

		if (!v)
			continue;
		if (v->type != JSON_NUMBER || v->num < 0)
			return -EINVAL;
		if (x->kind == K_DBL)
			*(double *)p = v->num;
		else if (x->kind == K_U64)
			*(uint64_t *)p = strtoull(v->str, NULL, 10);
		else
			*(uint32_t *)p = (uint32_t)v->num;
	}
	if (!t || !w)
		return 0;
	if (t->type != JSON_ARRAY || w->type != JSON_ARRAY)
		return -EINVAL;
	nt = numbers(t->str, in->wss.t_s, POLICY_MAX_POINTS);
	nw = numbers(w->str, in->wss.pages, POLICY_MAX_POINTS);
	if (nt < 0 || nt != nw)
		return -EINVAL;
	in->wss.n = (uint32_t)nt;
	for (uint32_t i = 1; i < in->wss.n; i++)
		if (!(in->wss.t_s[i] > in->wss.t_s[i - 1]))
			return -EINVAL;
	return 0;
}

static void prediction(struct json_out *j, const char *key, const struct policy_prediction *p)
{
	json_obj_begin(j, key);
	json_bool(j, "feasible", p->feasible);
	json_bool(j, "completes", p->completes);
	json_dbl(j, "total_s", p->total_s, 3);
	json_dbl(j, "downtime_ms", p->downtime_s * 1e3, 3);
	json_dbl(j, "bytes", p->bytes, 0);
	json_dbl(j, "remote_faults", p->remote_faults, 0);
	json_dbl(j, "slowdown", p->slowdown, 3);
	json_u64(j, "rounds", p->rounds);
	json_str_or_null(j, "fails", p->fails[0] ? p->fails : NULL);
	json_obj_end(j);
}

void policy_record_decision(struct json_out *j, const struct policy_decision *d)
{
	json_num(j, "t_s", d->t_s);
	json_u64(j, "round", d->round);
	json_str(j, "action", policy_action_name(d->action));
	json_str(j, "choice", policy_mode_name(d->choice));
	json_num(j, "bandwidth", d->bandwidth);
	json_str(j, "reason", d->reason);
	for (int m = 0; m < POLICY_NMODES; m++) {
		const struct policy_prediction *p = &d->pred[m];
		char k[40];

		snprintf(k, sizeof(k), "%s_total_s", policy_mode_name(m));
		json_num(j, k, p->total_s);
		snprintf(k, sizeof(k), "%s_downtime_s", policy_mode_name(m));
		json_num(j, k, p->downtime_s);
		snprintf(k, sizeof(k), "%s_feasible", policy_mode_name(m));
		json_bool(j, k, p->feasible);
	}
}

void policy_record_decision_obj(struct json_out *j, const struct policy_decision *d)
{
	json_obj_begin(j, NULL);
	json_dbl(j, "t_s", d->t_s, 3);
	json_u64(j, "round", d->round);
	json_str(j, "action", policy_action_name(d->action));
	json_str(j, "choice", policy_mode_name(d->choice));
	json_dbl(j, "bandwidth_mbps", d->bandwidth * 8 / 1e6, 1);
	json_str(j, "reason", d->reason);
	policy_record_predictions(j, d);
	json_obj_end(j);
}

void policy_record_predictions(struct json_out *j, const struct policy_decision *d)
{
	json_obj_begin(j, "predicted");
	for (int m = 0; m < POLICY_NMODES; m++)
		if (d->pred[m].valid)
			prediction(j, policy_mode_name(m), &d->pred[m]);
	json_obj_end(j);
}

int policy_file_load(const char *path, struct policy_limits *l, char *why, size_t whylen)
{
	char text[65536];
	char sub[200];
	size_t n;
	FILE *f = fopen(path, "re");
	int err = 0;

	if (!f) {
		err = -errno;
		snprintf(why, whylen, "cannot read the policy file %s: %s", path, strerror(-err));
		return err;
	}
	n = fread(text, 1, sizeof(text), f);
	if (ferror(f))
		err = -EIO;
	else if (n == sizeof(text))
		err = -EFBIG;
	fclose(f);
	if (err) {
		snprintf(why, whylen, "cannot read the policy file %s: %s", path,
			 err == -EFBIG ? "larger than 64 KiB" : strerror(-err));
		return err;
	}
	text[n] = 0;
	if (strlen(text) != n) {
		snprintf(why, whylen, "%s: not a text file", path);
		return -EINVAL;
	}
	if (policy_config_parse(text, l, sub, sizeof(sub))) {
		snprintf(why, whylen, "%s: %s", path, sub);
		return -EINVAL;
	}
	return 0;
}

void policy_input_from_sample(struct policy_input *in, const struct probe_sample *ps)
{
	in->wss.n = 0;
	for (uint32_t i = 0; i < ps->nwin && i < PROBE_NWIN; i++)
		policy_curve_add(&in->wss, probe_windows_s[i], (double)ps->wss_pages[i]);
	in->dma_pages_per_s = ps->dma_pages_per_s;
	in->locality = ps->locality < 0 ? 0 : ps->locality > 1 ? 1 : ps->locality;
	if (ps->rtt_us)
		in->rtt_s = (double)ps->rtt_us / 1e6;
}

int policy_vm_read(const struct json_field *f, size_t n, struct policy_vm *vm)
{
	const struct json_field *ram = json_find(f, n, "ram_bytes");
	const struct json_field *res = json_find(f, n, "resident_pages");
	const struct json_field *zero = json_find(f, n, "zero_pages");
	const struct json_field *cpu = json_find(f, n, "vcpus");

	memset(vm, 0, sizeof(*vm));
	if (!ram || ram->type != JSON_NUMBER || ram->num < 4096 || ram->num > 1e15)
		return -EINVAL;
	vm->ram_pages = (uint64_t)(ram->num / POLICY_PAGE_SIZE);
	vm->resident_pages = vm->ram_pages;
	if (res && res->type == JSON_NUMBER && res->num >= 0 && res->num <= (double)vm->ram_pages)
		vm->resident_pages = (uint64_t)res->num;
	if (zero && zero->type == JSON_NUMBER && zero->num >= 0 &&
	    zero->num <= (double)vm->resident_pages)
		vm->zero_pages = (uint64_t)zero->num;
	vm->vcpus = cpu && cpu->type == JSON_NUMBER && cpu->num >= 1 && cpu->num <= 1024
			? (uint32_t)cpu->num
			: 1;
	return 0;
}

void policy_input_start(struct policy_input *in, const struct policy_vm *vm, double bandwidth,
			double rtt_s, const struct probe_sample *ps)
{
	memset(in, 0, sizeof(*in));
	in->ram_pages = vm->ram_pages;
	in->resident_pages = vm->resident_pages;
	in->remaining_pages = vm->resident_pages;
	/* zero pages go as a flag: what is sent is what is not zero */
	in->wire_ratio = vm->resident_pages && vm->zero_pages < vm->resident_pages
			     ? 1.0 - (double)vm->zero_pages / (double)vm->resident_pages
			     : 1.0;
	in->vcpus = vm->vcpus;
	in->state_bytes = (uint64_t)vm->vcpus * 8192;
	in->bandwidth = bandwidth;
	in->rtt_s = rtt_s;
	if (ps)
		policy_input_from_sample(in, ps);
}

const char *policy_record_mode_name(int requested)
{
	return requested < 0 ? "auto" : policy_mode_name((enum policy_mode)requested);
}

int policy_record_mode(const char *s)
{
	if (!strcmp(s, "auto"))
		return -1;
	for (int m = 0; m < POLICY_NMODES; m++)
		if (!strcmp(s, policy_mode_name(m)))
			return m;
	return -2;
}
