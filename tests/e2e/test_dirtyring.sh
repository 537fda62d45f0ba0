#!/bin/sh
# Dirty tracking on KVM's dirty ring or its dirty log, end to end: the
# default is the ring where KVM offers it, --dirty-tracking chooses, status
# and the migration report say which one is on, and a chain of migrations
# (pre-copy, hybrid and post-copy) between VMs that use either mechanism
# (ring -> ring -> log -> ring -> log -> ring) verifies ok after every hop:
# a destination VM made with the ring migrates on with it.
. tests/e2e/lib.sh
require_kvm
PORT=$((10000 + $$ % 20000)) # below the ephemeral range (32768+)

# --- usage ---------------------------------------------------------------------
"$HM" run --dirty-tracking bogus >"$T/bad.out" 2>"$T/bad.err"
check "a bad --dirty-tracking is a usage error (exit 2)" [ $? -eq 2 ]
check "the usage error names the choices" grep -q "ring, log or auto" "$T/bad.err"
HYBRIDMIG_DIRTY_TRACKING=nope "$HM" run --seconds 1 >/dev/null 2>"$T/badenv.err"
check "a bad HYBRIDMIG_DIRTY_TRACKING is a usage error (exit 2)" [ $? -eq 2 ]
"$HM" incoming --insecure --listen 127.0.0.1:1 --dirty-tracking bogus >/dev/null 2>&1
check "incoming: a bad --dirty-tracking is a usage error (exit 2)" [ $? -eq 2 ]

# Does KVM offer the ring here? ('ring' asked where it is not offered is a clear error.)
if "$HM" run --dirty-tracking ring --mem 64M --guest idle --seconds 1 >"$T/ring.out" \
	2>"$T/ring.err"; then
	RING=dirty-ring
	ok "KVM offers the dirty ring"
else
	RING=dirty-log
	check "ring asked but not offered: a clear error" grep -q "does not offer the dirty ring" \
		"$T/ring.err"
fi

# tracking NAME RUN_ARGS...: start a VM, put what its status says of its tracking in $T/NAME.dt
tracking() {
	n=$1
	shift
	start_bg "$n" run --mem 64M --guest idle --control "$T/$n.sock" "$@"
	if wait_sock "$T/$n.sock"; then
		"$HM" status --control "$T/$n.sock" --json | json_get dirty_tracking >"$T/$n.dt"
	else
		bad "$n: VM did not come up"
	fi
	"$HM" stop --control "$T/$n.sock" >/dev/null
	eval "wait \$PID_$n"
}
tracking st_auto
check "run: auto is the default ($RING)" [ "$(cat "$T/st_auto.dt")" = "$RING" ]
tracking st_log --dirty-tracking log
check "run --dirty-tracking log: the dirty log" [ "$(cat "$T/st_log.dt")" = dirty-log ]
tracking st_auto2 --dirty-tracking auto
check "run --dirty-tracking auto: $RING" [ "$(cat "$T/st_auto2.dt")" = "$RING" ]
export HYBRIDMIG_DIRTY_TRACKING=log
tracking st_env
tracking st_envopt --dirty-tracking auto
unset HYBRIDMIG_DIRTY_TRACKING
check "HYBRIDMIG_DIRTY_TRACKING=log: the dirty log" [ "$(cat "$T/st_env.dt")" = dirty-log ]
check "the option wins over the environment" [ "$(cat "$T/st_envopt.dt")" = "$RING" ]

# --- a chain of migrations ----------------------------------------------------------
# hop NAME FROM_SOCK EXPECT_REPORT INCOMING_ARGS -- MIGRATE_ARGS: move the VM behind
# FROM_SOCK to a new incoming; the report names the source's mechanism; verify ok there
hop() {
	n=$1 from=$2 want=$3
	shift 3
	inc=""
	while [ "$1" != -- ]; do inc="$inc $1"; shift; done
	shift
	PORT=$((PORT + 1))
	start_bg "$n" incoming $TLS_DST --listen 127.0.0.1:$PORT --control "$T/$n.sock" $inc
	"$HM" migrate $TLS_SRC --control "$from" --to 127.0.0.1:$PORT --json "$@" \
		>"$T/$n.mig" 2>"$T/$n.mig.err"
	check "$n: migrate exits 0" [ $? -eq 0 ]
	tail -1 "$T/$n.mig" >"$T/$n.final"
	check "$n: report says done" [ "$(json_get phase <"$T/$n.final")" = done ]
	check "$n: report names the source's tracking ($want)" \
		[ "$(json_get dirty_tracking <"$T/$n.final")" = "$want" ]
	wait_sock "$T/$n.sock" || bad "$n: destination control socket did not come up"
	v=$("$HM" verify --control "$T/$n.sock" --json | json_get verify)
	check "$n: verify ok after the move" [ "$v" = ok ]
}

R=$(writer_rate 20000 2) || exit 1
IO=$(writer_io 20 2) || exit 1
start_bg a run -v --mem 512M --vcpus 2 --guest dirtier:wss=64M,rate=$R,pattern=random,io=$IO \
	--control "$T/a.sock"
wait_sock "$T/a.sock" || bad "a: source did not come up"
sleep 0.5
# a (auto) -> b (auto), pre-copy
hop b "$T/a.sock" "$RING" -- --mode precopy
wait "$PID_a"
check "a: source exits 0 once the VM has moved" [ $? -eq 0 ]
check "a: the log line at the start names the tracking" \
	grep -q "dirty tracking: $RING" "$T/a.err"
check "b: the destination VM has $RING" \
	[ "$("$HM" status --control "$T/b.sock" --json | json_get dirty_tracking)" = "$RING" ]
# b (a migrated VM, ring) -> c (log), hybrid: its last harvest is the final one
hop c "$T/b.sock" "$RING" --dirty-tracking log -- --mode hybrid --postcopy-after-rounds 1
check "c: report says it switched to post-copy" [ "$(json_get postcopy <"$T/c.final")" = true ]
check "c: the destination VM has the dirty log" \
	[ "$("$HM" status --control "$T/c.sock" --json | json_get dirty_tracking)" = dirty-log ]
# c (log) -> d (auto), hybrid again, from the log this time
hop d "$T/c.sock" dirty-log -- --mode hybrid --postcopy-after-rounds 1
check "d: report says it switched to post-copy" [ "$(json_get postcopy <"$T/d.final")" = true ]
# d (ring) -> e (log) -> f (auto), post-copy: the collect-only scan on either
hop e "$T/d.sock" "$RING" --dirty-tracking log -- --mode postcopy
hop f "$T/e.sock" dirty-log -- --mode postcopy
u1=$("$HM" status --control "$T/f.sock" --json | json_get work_units)
sleep 0.3
u2=$("$HM" status --control "$T/f.sock" --json | json_get work_units)
check "f: guest still progressing ($u1 -> $u2)" [ "$u2" -gt "$u1" ]
for n in b c d e; do
	eval "wait \$PID_$n"
	check "$n: exits 0 once the VM has moved on" [ $? -eq 0 ]
done
"$HM" stop --control "$T/f.sock" >/dev/null
wait "$PID_f"
check "f: exits 0 on stop" [ $? -eq 0 ]

check "no hybridmig left running" none_running
finish
