#!/bin/sh
# Live pre-copy migration end to end: two hybridmig processes over TCP,
# real KVM guests; every success ends with verify ok on the destination and
# its work counter growing, every failure with the VM still running and
# verifying ok on the source.
. tests/e2e/lib.sh
require_kvm
PORT=$((10000 + $$ % 20000)) # below the ephemeral range (32768+)

# migrate_ok NAME RUN_ARGS... : run a source, an incoming, migrate, check the destination
migrate_ok() {
	n=$1
	shift
	PORT=$((PORT + 1))
	start_bg "${n}_dst" incoming $TLS_DST --listen 127.0.0.1:$PORT --control "$T/$n.d.sock"
	start_bg "${n}_src" run --control "$T/$n.s.sock" "$@"
	wait_sock "$T/$n.s.sock" || { bad "$n: source did not come up"; return; }
	sleep 0.5
	"$HM" migrate --mode precopy $TLS_SRC --control "$T/$n.s.sock" --to 127.0.0.1:$PORT --json >"$T/$n.mig" 2>"$T/$n.mig.err"
	rc=$?
	tail -1 "$T/$n.mig" >"$T/$n.final"
	check "$n: migrate exits 0" [ $rc -eq 0 ]
	check "$n: report says done" [ "$(json_get phase <"$T/$n.final")" = done ]
	check "$n: downtime reported" [ "$(json_get downtime_ms <"$T/$n.final")" != 0.000 ]
	# one count of rounds: the report's, the progress lines' and the destination's
	r=$(json_get rounds <"$T/$n.final")
	check "$n: progress lines never pass the report's $r rounds" python3 -c '
import json, sys
rs = [json.loads(l).get("round") for l in open(sys.argv[1]) if l.startswith("{")]
sys.exit(0 if rs and all(x is None or x <= int(sys.argv[2]) for x in rs) else 1)' "$T/$n.mig" "$r"
	check "$n: the destination counts $r rounds too" wait_line "received, $r rounds" "$T/${n}_dst.err"
	wait_sock "$T/$n.d.sock" || bad "$n: destination control socket did not come up"
	u1=$("$HM" status --control "$T/$n.d.sock" --json | json_get work_units)
	v=$("$HM" verify --control "$T/$n.d.sock" --json | json_get verify)
	check "$n: verify ok on the destination" [ "$v" = ok ]
	if [ "$GROWS" = 1 ]; then
		jump=$("$HM" status --control "$T/$n.d.sock" --json | json_get guest_max_tsc_jump_ms)
		# the guest saw its own pause (a behaviour, not a timing: no bound is asserted)
		check "$n: the guest measured a pause of $jump ms" python3 -c "import sys; sys.exit(0 if float('$jump') > 0 else 1)"
	fi
	sleep 0.3
	u2=$("$HM" status --control "$T/$n.d.sock" --json | json_get work_units)
	if [ "$GROWS" = 1 ]; then check "$n: guest still progressing ($u1 -> $u2)" [ "$u2" -gt "$u1" ]; fi
	eval "ps=\$PID_${n}_src"
	wait "$ps"
	check "$n: source exits 0 once the VM has moved" [ $? -eq 0 ]
	"$HM" stop --control "$T/$n.d.sock" >/dev/null
	eval "pd=\$PID_${n}_dst"
	wait "$pd"
	check "$n: destination exits 0 on stop" [ $? -eq 0 ]
}

# source_fine NAME: the VM is still running on the source and verifies ok
source_fine() {
	st=$("$HM" status --control "$T/$1.s.sock" --json | json_get state)
	check "$1: VM still running on the source" [ "$st" = running ]
	v=$("$HM" verify --control "$T/$1.s.sock" --json | json_get verify)
	check "$1: verify ok on the source" [ "$v" = ok ]
	"$HM" stop --control "$T/$1.s.sock" >/dev/null
}

GROWS=0 migrate_ok idle --mem 256M --guest idle
R=$(writer_rate 20000) || exit 1
R2=$(writer_rate 20000 2) || exit 1
IO=$(writer_io 20 2) || exit 1
GROWS=1 migrate_ok dirtier1 --mem 256M --guest dirtier:wss=32M,rate=$R
GROWS=1 migrate_ok dirtier2io --mem 256M --vcpus 2 --guest dirtier:wss=32M,rate=$R2,pattern=random,io=$IO

# --- the destination refuses: VM keeps running on the source -------------------
PORT=$((PORT + 1))
start_bg ref_dst incoming $TLS_DST --listen 127.0.0.1:$PORT --max-mem 64M
start_bg ref_src run --mem 256M --guest dirtier:wss=16M --control "$T/ref.s.sock"
wait_sock "$T/ref.s.sock"
"$HM" migrate --mode precopy $TLS_SRC --control "$T/ref.s.sock" --to 127.0.0.1:$PORT >"$T/ref.out" 2>"$T/ref.err"
check "refused: migrate exits 6 (refused)" [ $? -eq 6 ]
check "refused: the reason reaches the source" grep -q "refused the VM.*accepts at most 64 MiB" "$T/ref.err"
source_fine ref
wait "$PID_ref_dst"
check "refused: destination exits 1" [ $? -eq 1 ]

# --- the destination dies mid-migration ----------------------------------------
PORT=$((PORT + 1))
start_bg kill_dst incoming $TLS_DST --listen 127.0.0.1:$PORT
start_bg kill_src run --mem 512M --guest dirtier:wss=256M,rate=50000 --control "$T/kill.s.sock"
wait_sock "$T/kill.s.sock"
sleep 1
"$HM" migrate --mode precopy $TLS_SRC --control "$T/kill.s.sock" --to 127.0.0.1:$PORT --bandwidth 40M >"$T/kill.out" 2>"$T/kill.err" &
mp=$!
# killed mid-copy, not during the handshake (which an emulated CPU can make last)
check "destination killed: the copy had begun" job_until "$T/kill.s.sock" phase precopy
kill -9 "$PID_kill_dst"
wait "$mp"
check "destination killed: migrate exits 7 (link lost)" [ $? -eq 7 ]
check "destination killed: the loss is reported" grep -q "connection to the destination was lost\|stopped answering" "$T/kill.err"
source_fine kill

# --- pre-copy that cannot converge gives up at --timeout -----------------------
PORT=$((PORT + 1))
start_bg to_dst incoming $TLS_DST --listen 127.0.0.1:$PORT
start_bg to_src run --mem 256M --guest dirtier:wss=64M --control "$T/to.s.sock"
wait_sock "$T/to.s.sock"
"$HM" migrate --mode precopy $TLS_SRC --control "$T/to.s.sock" --to 127.0.0.1:$PORT --bandwidth 20M --timeout 2 --json >"$T/to.out" 2>"$T/to.err"
check "no convergence: migrate exits 5 (not converged)" [ $? -eq 5 ]
check "no convergence: says so" grep -q "did not converge within 2 s" "$T/to.out"
check "no convergence: progress lines were printed" grep -q '"event":"progress"' "$T/to.out"
check "no convergence: the report says not_converged" grep -q '"failure":"not_converged"' "$T/to.out"
source_fine to
kill "$PID_to_dst" 2>/dev/null
wait "$PID_to_dst"
check "SIGTERM ends a waiting destination" [ $? -eq 1 ]

# --- bad migrate requests ------------------------------------------------------
start_bg bad_src run --mem 128M --guest idle --control "$T/bad.s.sock"
wait_sock "$T/bad.s.sock"
"$HM" migrate --mode precopy $TLS_SRC --control "$T/bad.s.sock" --to nowhere >/dev/null 2>"$T/b1.err"
check "bad --to: exit 2" [ $? -eq 2 ]
"$HM" migrate $TLS_SRC --control "$T/bad.s.sock" --to 127.0.0.1:1 --mode sideways >/dev/null 2>&1
check "bad --mode: exit 2" [ $? -eq 2 ]
"$HM" migrate --mode precopy $TLS_SRC --control "$T/bad.s.sock" --to 127.0.0.1:1 >/dev/null 2>"$T/b3.err"
check "nobody listening: exit 7 (unreachable)" [ $? -eq 7 ]
check "nobody listening: says so" grep -q "cannot connect" "$T/b3.err"
source_fine bad
wait "$PID_bad_src" "$PID_ref_src" "$PID_kill_src" "$PID_to_src"
check "no hybridmig left running" none_running
finish
