#!/bin/sh
# Every row of docs/switchover.md's table: a failure injected exactly there
# (HYBRIDMIG_INJECT, src/inject.h) or caused by the operator, and the check
# that exactly one copy of the guest runs afterwards — or that both sides
# wait, and the migration recovers. Real KVM guests, TLS on loopback.
. tests/e2e/lib.sh
require_kvm
PORT=$((10000 + ($$ + 5000) % 20000)) # below the ephemeral range (32768+)

# state SOCK: the VM's state through its control socket ("none" if it does not answer)
state() {
	"$HM" status --control "$1" --json 2>/dev/null | json_get state 2>/dev/null || echo none
}

# pair NAME RUN_ARGS... : a source VM and a destination (extra incoming flags in $DST_ARGS,
# the environments of the two processes in $SRC_ENV and $DST_ENV)
pair() {
	n=$1
	shift
	PORT=$((PORT + 1))
	env $DST_ENV "$HM" incoming $TLS_DST --listen 127.0.0.1:$PORT --control "$T/$n.d.sock" \
		$DST_ARGS >"$T/${n}_dst.out" 2>"$T/${n}_dst.err" &
	PIDS="$PIDS $!"
	eval "PID_${n}_dst=$!"
	wait_listen "$T/${n}_dst.err" || bad "$n: destination did not listen"
	env $SRC_ENV "$HM" run --control "$T/$n.s.sock" "$@" >"$T/${n}_src.out" 2>"$T/${n}_src.err" &
	PIDS="$PIDS $!"
	eval "PID_${n}_src=$!"
	wait_sock "$T/$n.s.sock" || bad "$n: source did not come up"
}

# migrate NAME ARGS...: migrate the pair's VM, JSON into $T/NAME.mig, status in $rc
migrate() {
	n=$1
	shift
	"$HM" migrate --mode precopy $TLS_SRC --control "$T/$n.s.sock" --to 127.0.0.1:$PORT --json "$@" \
		>"$T/$n.mig" 2>"$T/$n.mig.err"
	rc=$?
	tail -1 "$T/$n.mig" >"$T/$n.final"
}

# runs_on_dest_only NAME: the guest runs and verifies on the destination, the source exits 0
runs_on_dest_only() {
	wait_sock "$T/$1.d.sock" || bad "$1: destination control socket did not come up"
	check "$1: verify ok on the destination" \
		[ "$("$HM" verify --control "$T/$1.d.sock" --json | json_get verify)" = ok ]
	eval "ps=\$PID_${1}_src"
	wait "$ps"
	check "$1: the source exits 0 (its copy is gone)" [ $? -eq 0 ]
	"$HM" stop --control "$T/$1.d.sock" >/dev/null
	eval "pd=\$PID_${1}_dst"
	wait_exit "$pd" 30
	check "$1: the destination exits 0 on stop" [ $? -eq 0 ]
}

# runs_on_source_only NAME: the VM runs and verifies on the source; the destination ran nothing
runs_on_source_only() {
	check "$1: VM running on the source" [ "$(state "$T/$1.s.sock")" = running ]
	check "$1: verify ok on the source" \
		[ "$("$HM" verify --control "$T/$1.s.sock" --json | json_get verify)" = ok ]
	eval "pd=\$PID_${1}_dst"
	wait_exit "$pd" 90
	check "$1: the destination exits 1 without running the guest" [ $? -eq 1 ]
	check "$1: the destination never ran it" not grep -q "VM running here" "$T/${1}_dst.err"
	"$HM" stop --control "$T/$1.s.sock" >/dev/null
}

# fenced NAME: the source holds the VM fenced; resume and stop are refused; --force resumes
fenced() {
	check "$1: migrate says the VM is fenced" grep -q '"fenced":true' "$T/$1.final"
	check "$1: source state fenced" [ "$(state "$T/$1.s.sock")" = fenced ]
	"$HM" resume --control "$T/$1.s.sock" >/dev/null 2>"$T/$1.res.err"
	check "$1: resume refused while fenced" [ $? -eq 1 ]
	check "$1: the refusal says why" grep -q "run the guest twice" "$T/$1.res.err"
	"$HM" stop --control "$T/$1.s.sock" >/dev/null 2>"$T/$1.stop.err"
	check "$1: stop refused while fenced" [ $? -eq 1 ]
	kill -TERM "$(eval echo \$PID_${1}_src)"
	sleep 0.3
	check "$1: SIGTERM refused while fenced" [ "$(state "$T/$1.s.sock")" = fenced ]
}

R=$(writer_rate 20000) || exit 1
GUEST="--mem 256M --guest dirtier:wss=32M,rate=$R"

# --- row 2: READY lost with the link: the source resumes, the destination drops it
DST_ARGS="--reconnect-timeout 2" DST_ENV="HYBRIDMIG_INJECT=dst-ready:skip" pair r2 $GUEST
migrate r2
check "row 2: migrate fails (exit $rc: 1 or 7)" sh -c "[ $rc -eq 1 ] || [ $rc -eq 7 ]"
runs_on_source_only r2

# --- row 3: destination dies after READY: the source is fenced; --force brings it back
DST_ENV="HYBRIDMIG_INJECT=dst-after-ready:exit" pair r3 $GUEST
migrate r3 --reconnect-timeout 2
check "row 3: migrate exits 7 (link lost)" [ $rc -eq 7 ]
fenced r3
"$HM" resume --force --control "$T/r3.s.sock" >/dev/null 2>&1
check "row 3: resume --force runs it here again" [ "$(state "$T/r3.s.sock")" = running ]
check "row 3: verify ok on the source" \
	[ "$("$HM" verify --control "$T/r3.s.sock" --json | json_get verify)" = ok ]
"$HM" stop --control "$T/r3.s.sock" >/dev/null

# --- row 4: GO lost: the source reconnects, the destination still waits, GO again
DST_ENV="HYBRIDMIG_INJECT=dst-go:cut" pair r4 $GUEST
migrate r4
check "row 4: migrate exits 0" [ $rc -eq 0 ]
check "row 4: one reconnection" grep -q '"reconnects":1' "$T/r4.final"
check "row 4: the destination had not run it before GO" grep -q "does not run here until GO" "$T/r4_dst.err"
runs_on_dest_only r4

# --- row 5: STARTED lost: the source reconnects and learns the guest runs there
DST_ENV="HYBRIDMIG_INJECT=dst-started:skip" pair r5 $GUEST
migrate r5
check "row 5: migrate exits 0" [ $rc -eq 0 ]
check "row 5: one reconnection" grep -q '"reconnects":1' "$T/r5.final"
runs_on_dest_only r5

# --- row 6: post-copy link lost and the source's window closed (0 s: no retry at all,
# so the outcome does not depend on timing); migrate --resume finishes it
DST_ENV="HYBRIDMIG_INJECT=dst-postcopy:cut" pair r6 --mem 512M --guest dirtier:wss=128M,rate=20000
migrate r6 --mode postcopy --bandwidth 20M --reconnect-timeout 0
check "row 6: migrate exits 7 (link lost) when the window closes" [ $rc -eq 7 ]
fenced r6
"$HM" migrate --resume --control "$T/r6.s.sock" --json >"$T/r6.res" 2>"$T/r6.res.err"
check "row 6: migrate --resume finishes it" [ $? -eq 0 ]
check "row 6: the resumed report says done" [ "$(tail -1 "$T/r6.res" | json_get phase)" = done ]
runs_on_dest_only r6

# --- rows 7 and 12: source killed in post-copy; the destination says what is missing
pair r7 --mem 512M --guest dirtier:wss=256M,rate=20000
"$HM" migrate $TLS_SRC --control "$T/r7.s.sock" --to 127.0.0.1:$PORT --mode postcopy \
	--bandwidth 10M >/dev/null 2>&1 &
mp=$!
i=0
until grep -q "VM running here" "$T/r7_dst.err" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
check "row 7: the guest runs on the destination" grep -q "VM running here" "$T/r7_dst.err"
kill -9 "$PID_r7_src"
wait "$mp"
"$HM" stop --control "$T/r7.d.sock" >/dev/null 2>&1
wait_exit "$PID_r7_dst" 30
check "row 7: the destination exits once stopped (no hang)" [ $? -le 1 ]
check "row 7: it says how many pages are missing" grep -q "pages of the guest still on the source" "$T/r7_dst.err"

# --- row 8: destination killed after GO: the source stays fenced
DST_ENV="HYBRIDMIG_INJECT=dst-started:exit" pair r8 $GUEST
migrate r8 --reconnect-timeout 2
check "row 8: migrate exits 7 (link lost)" [ $rc -eq 7 ]
fenced r8
"$HM" resume --force --control "$T/r8.s.sock" >/dev/null 2>&1
check "row 8: resume --force runs the source's copy" [ "$(state "$T/r8.s.sock")" = running ]
"$HM" stop --control "$T/r8.s.sock" >/dev/null

# --- rows 9 and 10: operator commands during a migration; abort resumes
pair r9 --mem 512M --guest dirtier:wss=256M,rate=20000
"$HM" migrate --mode precopy $TLS_SRC --control "$T/r9.s.sock" --to 127.0.0.1:$PORT --bandwidth 10M --json \
	>"$T/r9.mig" 2>&1 &
mp=$!
i=0
until [ "$(state "$T/r9.s.sock")" = running ] && grep -q precopy "$T/r9.mig" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
"$HM" stop --control "$T/r9.s.sock" >/dev/null 2>"$T/r9.stop.err"
check "row 9: stop refused during a migration" [ $? -eq 1 ]
"$HM" resume --control "$T/r9.s.sock" >/dev/null 2>&1
check "row 9: resume refused during a migration" [ $? -eq 1 ]
"$HM" pause --control "$T/r9.s.sock" >/dev/null 2>&1
check "row 9: pause refused during a migration" [ $? -eq 1 ]
kill -TERM "$PID_r9_src"
sleep 0.3
check "row 9: SIGTERM refused during a migration" kill -0 "$PID_r9_src"
"$HM" abort --control "$T/r9.s.sock" >/dev/null
check "row 10: abort accepted" [ $? -eq 0 ]
wait "$mp"
check "row 10: migrate exits 4 (cancelled)" [ $? -eq 4 ]
check "row 10: says it was cancelled" grep -q "cancelled" "$T/r9.mig"
runs_on_source_only r9

# --- row 11: abort after the fence is refused; the migration completes
SRC_ENV="HYBRIDMIG_INJECT=src-fenced:stall:3000" DST_ENV= pair r11 $GUEST
"$HM" migrate --mode precopy $TLS_SRC --control "$T/r11.s.sock" --to 127.0.0.1:$PORT --json >"$T/r11.mig" 2>&1 &
mp=$!
i=0
until grep -q "injected failure at src-fenced" "$T/r11_src.err" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
"$HM" abort --control "$T/r11.s.sock" >/dev/null 2>"$T/r11.abort.err"
check "row 11: abort refused after the fence" [ $? -eq 1 ]
check "row 11: says it is too late" grep -q "too late" "$T/r11.abort.err"
wait "$mp"
check "row 11: the migration completes" [ $? -eq 0 ]
runs_on_dest_only r11

check "no hybridmig left running" none_running
finish
