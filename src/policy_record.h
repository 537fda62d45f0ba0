/* SPDX-License-Identifier: MIT */
/*
 * What the policy saw and decided, as JSON lines (migrate --record, trace
 * --record, policy simulate). One object per line, "type" first:
 *
 *   {"type":"policy","version":1,"requested_mode":"auto",<limits>}
 *   {"type":"input",<struct policy_input>}      before each decision
 *   {"type":"decision",<struct policy_decision>} right after it
 *   {"type":"limits",<limits>}                   when an operator changes them
 *   {"type":"vm",...} and {"type":"sample",...}  from `trace --record`
 *
 * Numbers are written with 17 significant digits, so a replay feeds the
 * rule exactly what it saw and must reproduce its decisions bit for bit.
 */
#ifndef HM_POLICY_RECORD_H
#define HM_POLICY_RECORD_H

#include <stddef.h>
#include "policy/policy.h"

struct json_out;
struct json_field;

#define POLICY_RECORD_VERSION 1

/* Members (into an open object): the limits as stored, by key. */
void policy_record_limits(struct json_out *j, const struct policy_limits *l);
/* Read the limits back (keys missing keep @l's values); 0 or -EINVAL. */
int policy_record_read_limits(const struct json_field *f, size_t n, struct policy_limits *l);
void policy_record_input(struct json_out *j, const struct policy_input *in);
int policy_record_read_input(const struct json_field *f, size_t n, struct policy_input *in);
/* The decision: action, choice, reason and each mode's prediction (flat). */
void policy_record_decision(struct json_out *j, const struct policy_decision *d);
/* One decision as an object of the final report (predictions nested by mode). */
void policy_record_decision_obj(struct json_out *j, const struct policy_decision *d);
/*
 * Read a --policy FILE (key = value) over @l: 0, or -errno with the file
 * name and "line N: ..." in @why.
 */
int policy_file_load(const char *path, struct policy_limits *l, char *why, size_t whylen);
struct probe_sample;
/*
 * The probe's figures into a policy input: the working-set curve (the
 * windows measured so far), DMA writes, the link's RTT when it watches one.
 */
void policy_input_from_sample(struct policy_input *in, const struct probe_sample *ps);
/* A VM as a trace describes it ({"type":"vm",...}), for "what if it started now". */
struct policy_vm {
	uint64_t ram_pages;
	uint64_t resident_pages;
	uint64_t zero_pages; /* of the resident ones, 0 when unknown */
	uint32_t vcpus;
};
/* Read a trace's vm line; 0 or -EINVAL. */
int policy_vm_read(const struct json_field *f, size_t n, struct policy_vm *vm);
/*
 * The input of a decision at the start of a migration of @vm over a link of
 * @bandwidth bytes/s and @rtt_s, with the probe's figures @ps.
 */
void policy_input_start(struct policy_input *in, const struct policy_vm *vm, double bandwidth,
			double rtt_s, const struct probe_sample *ps);
/* Member "predicted": one object per mode evaluated (feasible, total_s, downtime_ms, ...). */
void policy_record_predictions(struct json_out *j, const struct policy_decision *d);
/* "auto" for -1, else the mode's name; -2 when @s names none. */
const char *policy_record_mode_name(int requested);
int policy_record_mode(const char *s);

#endif
