// SPDX-License-Identifier: MIT
/*
 * hybridmig command line: dispatches to the commands (src/cmd_*.c), which
 * parse options, build the objects, own the event loop and map -errno to
 * exit codes: 0 success, 1 failure, 2 bad usage, 3 guest verify found bad
 * pages.
 */
#define LOG_PREFIX ""
#include <event2/thread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "src/cmd.h"
#include "src/log.h"
#include "src/version.h"

static void print_main_help(void)
{
	printf("usage: hybridmig COMMAND [OPTIONS]\n\n"
	       "Live-migrates KVM virtual machines; runs built-in self-verifying test guests.\n\n"
	       "commands:\n"
	       "  run       start a VM running a built-in guest, optionally serving a control "
	       "socket\n"
	       "  status    show a running VM's state and progress (via its control socket)\n"
	       "  verify    ask the guest to check every page it wrote\n"
	       "  pause     stop all vCPUs and devices (the stop-and-copy barrier)\n"
	       "  resume    restart a paused VM\n"
	       "  stop      stop the VM; its hybridmig process exits\n"
	       "  abort     abort a running migration before its switch-over\n"
	       "  switch-postcopy  switch a running pre-copy to post-copy after this round\n"
	       "  job       show the running migration (or how the last one ended)\n"
	       "  set-bandwidth  change a running migration's bandwidth cap\n"
	       "  set-downtime   change a running migration's downtime limit\n"
	       "  incoming  wait for a migrated VM, receive it and run it\n"
	       "  migrate   move a running VM, live, to an 'incoming' hybridmig\n"
	       "  trace     measure a running VM's dirty rate and working set (eBPF probe)\n"
	       "  policy    what the migration policy would choose: simulate a recording,\n"
	       "            explain a running VM, list the policy file's keys\n\n"
	       "'hybridmig COMMAND --help' describes each command's options.\n"
	       "'hybridmig --version' (or -V, or version) prints the version and what it was "
	       "built with.\n"
	       "Exit status: 0 ok, 1 failure, 2 bad usage, 3 verify found bad pages;\n"
	       "migrate: 4 cancelled, 5 did not converge, 6 refused by the destination,\n"
	       "7 link lost ('hybridmig migrate --help').\n");
}

int main(int argc, char **argv)
{
	static const char *const clients[] = { "status",      "verify", "pause",
					       "resume",      "stop",	"switch-postcopy",
					       "abort",	      "job",	"set-bandwidth",
					       "set-downtime" };
	const char *cmd = argc > 1 ? argv[1] : NULL;

	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads()) {
		hm_err("libevent has no pthread support");
		return 1;
	}
	if (!cmd) {
		print_main_help();
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		print_main_help();
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
		printf("hybridmig %s\n%s\n", hm_version(), hm_version_build());
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "incoming"))
		return cmd_incoming(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(argc - 1, argv + 1);
	if (!strcmp(cmd, "trace"))
		return cmd_trace(argc - 1, argv + 1);
	if (!strcmp(cmd, "policy"))
		return cmd_policy(argc - 1, argv + 1);
	for (size_t i = 0; i < ARRAY_SIZE(clients); i++)
		if (!strcmp(cmd, clients[i]))
			return cmd_client(cmd, argc - 1, argv + 1);
	return cmd_usage_error(NULL, "unknown command '%s'", cmd);
}
