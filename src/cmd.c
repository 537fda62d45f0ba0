// SPDX-License-Identifier: MIT
/* Shared by the commands (src/cmd.h). */
#include "src/cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include "src/cmdopt.h"
#include "src/log.h"

int cmd_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hybridmig%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'hybridmig %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
	return EXIT_USAGE;
}

int cmd_opt_dirty(const struct cmdopt *o, const char *arg, void *opts)
{
	return dirty_mode_parse(arg, cmdopt_field(o, opts));
}

int cmd_opt_verbose(const struct cmdopt *o, const char *arg, void *opts)
{
	log_set_level(log_get_level() < HM_LOG_DBG ? log_get_level() + 1 : HM_LOG_DBG);
	return 0;
}
