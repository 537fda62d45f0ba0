/* SPDX-License-Identifier: MIT */
/*
 * The command-line commands, one file each: cmd_run.c (run, and the VM's
 * event loop that incoming reuses once a VM has arrived), cmd_incoming.c,
 * cmd_migrate.c, cmd_trace.c, cmd_client.c (status, verify, pause, resume, stop, abort,
 * switch-postcopy). main.c dispatches. Each command returns the process's
 * exit status: 0 success, 1 failure, 2 bad usage, 3 verify found bad pages.
 */
#ifndef HM_CMD_H
#define HM_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include "src/devwin.h"
#include "src/dirty.h"
#include "src/guest.h"
#include "src/util.h"

struct event;
struct event_base;
struct vm;
struct vmctl;
struct control;
struct metrics;
struct cmdopt;

#define EXIT_USAGE    2
#define EXIT_BADPAGES 3
/* migrate: why it failed (src/mig.h mig_failure_class); 1 for any other reason */
#define EXIT_CANCELLED	   4
#define EXIT_NOT_CONVERGED 5
#define EXIT_REFUSED	   6
#define EXIT_LINK_LOST	   7

struct run_opts {
	uint64_t mem;
	unsigned int vcpus;
	const char *guest;
	const char *control;
	uint64_t seconds;
	bool json;
	enum dirty_mode dirty; /* --dirty-tracking: which KVM mechanism the VM tracks pages with */
	const char *metrics_listen; /* --metrics-listen ADDR:PORT, or NULL */
};

/* A VM served on an event loop: run's, and incoming's once the VM runs here. */
struct run_ctx {
	struct run_opts o;
	struct guest_spec spec;
	struct event_base *base;
	struct vm *vm;
	struct vmctl *vc;
	struct control *ctl;	 /* made here unless the caller bound it first */
	struct metrics *metrics; /* --metrics-listen; made here unless the caller did */
	struct event *seconds_ev;
	struct event *progress_ev;
	struct event *sig_ev[2];
	int vm_err; /* the VM's own failure */
	bool interrupted;
	bool final_done;
	struct devwin_verdict final;
	bool progress_shown;
};

/* Print "hybridmig CMD: MESSAGE" and a hint; returns EXIT_USAGE. */
int cmd_usage_error(const char *cmd, const char *fmt, ...) __printf(2, 3);
/* Option callbacks (src/cmdopt.h) several commands share. */
/* --dirty-tracking MODE into the enum dirty_mode at @o's field; 0 or -EINVAL. */
int cmd_opt_dirty(const struct cmdopt *o, const char *arg, void *opts);
/* -v, --verbose: one log level more, up to debug; 0. */
int cmd_opt_verbose(const struct cmdopt *o, const char *arg, void *opts);

int cmd_run(int argc, char **argv);
int cmd_incoming(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_client(const char *cmd, int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_policy_explain(int argc, char **argv);
/* The help of policy and its subcommands (@cmd: "policy"). */
void cmd_policy_usage(const char *cmd);
int cmd_trace(int argc, char **argv);

/* The loop of a VM (rc->vm set): control socket, signals, timers. 0 or -errno. */
int cmd_run_setup(struct run_ctx *rc) __must_check;
/* Stop the VM and print its summary; returns the exit status. */
int cmd_run_finish(struct run_ctx *rc);
/* The human summary of a VM's run. */
void cmd_run_summary(struct run_ctx *rc, int64_t touched, double secs);
/* Leave the loop. */
void cmd_run_stop(struct run_ctx *rc);
/* Free everything rc holds. */
void cmd_run_teardown(struct run_ctx *rc);

#endif
