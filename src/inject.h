/* SPDX-License-Identifier: MIT */
/*
 * Failure injection for the tests of docs/switchover.md: every row of its
 * table is tested by making a process die, or a link break, at exactly
 * that point. Off unless the environment says otherwise:
 *
 *   HYBRIDMIG_INJECT=POINT:ACTION[:MS][,POINT:ACTION[:MS]...]
 *
 * POINT names a place in the code (inject_at callers, e.g. "dst-after-ready");
 * ACTION is "exit" (the process dies at once, as with SIGKILL), "cut" (the
 * caller breaks the link there), "skip" (the caller skips the step, e.g.
 * a frame that is then lost) or "stall" (sleep MS, default 3000). Each
 * point fires once per process. Never set in production; harmless if set
 * to an unknown point.
 */
#ifndef HM_INJECT_H
#define HM_INJECT_H

enum inject_action {
	INJECT_NONE = 0,
	INJECT_CUT,
	INJECT_SKIP,
};

/*
 * At @point: exits or stalls here when asked to; returns INJECT_CUT or
 * INJECT_SKIP for the caller to act on, INJECT_NONE otherwise.
 */
enum inject_action inject_at(const char *point);

#endif
