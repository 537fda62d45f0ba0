#!/bin/sh
# The policy end to end (--mode auto, the default): real guests over TLS on
# loopback. An idle guest stays in pre-copy; a writer faster than the
# capped link goes post-copy or hybrid; each recording replays to the same
# decisions; without post-copy the policy gives up at the total-time limit
# and the VM keeps running on the source; a bad policy file is refused with
# the line named. Every move ends with verify ok on the destination.
. tests/e2e/lib.sh
require_kvm
require_uffd
PORT=$((10000 + $$ % 20000)) # below the ephemeral range (32768+)

# auto NAME MIGRATE_ARGS -- RUN_ARGS...: a source, a destination, migrate (no --mode);
# with BG=1, migrate runs in the background (PID_NAME_m) and auto returns at once
auto() {
	n=$1
	shift
	margs=""
	while [ "$1" != "--" ]; do margs="$margs $1"; shift; done
	shift
	PORT=$((PORT + 1))
	start_bg "${n}_d" incoming $TLS_DST --listen 127.0.0.1:$PORT --control "$T/$n.d.sock"
	start_bg "${n}_s" run --control "$T/$n.s.sock" "$@"
	wait_sock "$T/$n.s.sock" || { bad "$n: source did not come up"; return 1; }
	sleep 0.7
	if [ "${BG:-0}" = 1 ]; then
		"$HM" migrate $TLS_SRC --control "$T/$n.s.sock" --to 127.0.0.1:$PORT --json \
			--record "$T/$n.rec" $margs >"$T/$n.mig" 2>"$T/$n.mig.err" &
		PIDS="$PIDS $!"
		eval "PID_${n}_m=$!"
		return 0
	fi
	"$HM" migrate $TLS_SRC --control "$T/$n.s.sock" --to 127.0.0.1:$PORT --json \
		--record "$T/$n.rec" $margs >"$T/$n.mig" 2>"$T/$n.mig.err"
	rc=$?
	tail -1 "$T/$n.mig" >"$T/$n.final"
	return $rc
}

# moved NAME: the destination verifies ok; both processes end cleanly
moved() {
	n=$1
	wait_sock "$T/$n.d.sock" || bad "$n: destination control socket"
	check "$n: verify ok on the destination" \
		[ "$("$HM" verify --control "$T/$n.d.sock" --json | json_get verify)" = ok ]
	eval "ps=\$PID_${n}_s"
	wait "$ps"
	check "$n: source exits 0 once the VM has moved" [ $? -eq 0 ]
	"$HM" stop --control "$T/$n.d.sock" >/dev/null
	eval "pd=\$PID_${n}_d"
	wait "$pd"
}

# replays NAME: the recording replays to the same decisions
replays() {
	n=$1
	"$HM" policy simulate --trace "$T/$n.rec" --json >"$T/$n.sim" 2>"$T/$n.sim.err"
	check "$n: policy simulate exits 0" [ $? -eq 0 ]
	tail -1 "$T/$n.sim" >"$T/$n.sum"
	check "$n: simulate reproduces every decision" \
		[ "$(json_get same_as_recorded <"$T/$n.sum")" = true ]
	check "$n: as many decisions replayed as reported" \
		[ "$(json_get decisions <"$T/$n.sum")" = "$(json_get decisions_total <"$T/$n.final")" ]
}

# --- an idle guest: pre-copy -------------------------------------------------------
auto idle -- --mem 256M --guest dirtier:wss=32M,fill=1
check "idle: migrate exits 0" [ $? -eq 0 ]
check "idle: requested mode auto" [ "$(json_get requested_mode <"$T/idle.final")" = auto ]
check "idle: the policy kept pre-copy" [ "$(json_get mode <"$T/idle.final")" = precopy ]
check "idle: decisions reported" [ "$(json_get decisions_total <"$T/idle.final")" -ge 1 ]
check "idle: the last decision was stop-and-copy" \
	grep -q '"policy_decision":"stop-and-copy (precopy)"' "$T/idle.final"
check "idle: progress lines carry the decision" grep -q '"decision":' "$T/idle.mig"
moved idle
replays idle

# --- a writer faster than the link: post-copy or hybrid -------------------------------
auto fast --bandwidth 40M -- --mem 256M --guest dirtier:wss=64M
check "fast: migrate exits 0" [ $? -eq 0 ]
m=$(json_get mode <"$T/fast.final")
check "fast: the policy left pre-copy (mode $m)" [ "$m" = postcopy -o "$m" = hybrid ]
check "fast: it switched to post-copy" [ "$(json_get postcopy <"$T/fast.final")" = true ]
check "fast: a switch-postcopy decision with its reason" \
	grep -q '"action":"switch-postcopy","choice":"postcopy"' "$T/fast.final"
moved fast
replays fast
# the same recording under other limits: no post-copy allowed, so decisions differ
printf '# what if post-copy were not allowed\nallow_postcopy = no\n' >"$T/nopc.policy"
"$HM" policy simulate --trace "$T/fast.rec" --policy "$T/nopc.policy" --json >"$T/whatif" 2>&1
check "what-if replay exits 0" [ $? -eq 0 ]
check "what-if replay: decisions differ from the recording" \
	[ "$(tail -1 "$T/whatif" | json_get same_as_recorded)" = false ]
check "what-if replay: never a switch" not grep -q '"action":"switch-postcopy"' "$T/whatif"

# --- post-copy not allowed: the policy gives up, the VM stays -----------------------
# (in the background: its downtime limit is changed while it runs, and the
# replay must decide under the new limit from there on, as the migration did)
BG=1 auto nopc --bandwidth 40M --timeout 8 --policy "$T/nopc.policy" -- --mem 256M --guest dirtier:wss=64M
check "no post-copy: pre-copy runs" job_until "$T/nopc.s.sock" phase precopy
"$HM" set-downtime --control "$T/nopc.s.sock" 20 >/dev/null
check "no post-copy: set-downtime accepted while it runs" [ $? -eq 0 ]
wait_exit "$PID_nopc_m" 60
check "no post-copy: migrate exits 5 (not converged)" [ $? -eq 5 ]
tail -1 "$T/nopc.mig" >"$T/nopc.final"
check "no post-copy: the recording holds the new limit" python3 -c '
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(l["type"] == "limits" and abs(l["max_downtime_ms"] - 0.02) < 1e-12 for l in ls) else 1)' "$T/nopc.rec"
replays nopc
check "no post-copy: the policy gave up" grep -q "policy gives up" "$T/nopc.final"
check "no post-copy: never switched" [ "$(json_get postcopy <"$T/nopc.final")" != true ]
check "no post-copy: VM still running on the source" \
	[ "$("$HM" status --control "$T/nopc.s.sock" --json | json_get state)" = running ]
check "no post-copy: verify ok on the source" \
	[ "$("$HM" verify --control "$T/nopc.s.sock" --json | json_get verify)" = ok ]
"$HM" stop --control "$T/nopc.s.sock" >/dev/null
kill "$PID_nopc_d" 2>/dev/null
wait "$PID_nopc_s" "$PID_nopc_d"

# --- bad policy files and bad replays ----------------------------------------------
printf 'max_downtime_ms = 100\nmax_downtim_ms = 5\n' >"$T/typo.policy"
"$HM" migrate --insecure --control "$T/none.sock" --to 127.0.0.1:1 --policy "$T/typo.policy" \
	>/dev/null 2>"$T/typo.err"
check "unknown key: exit 2" [ $? -eq 2 ]
check "unknown key: names the line and the key" grep -q "line 2: unknown key 'max_downtim_ms'" "$T/typo.err"
printf 'max_slowdown = 2\n' >"$T/range.policy"
"$HM" migrate --insecure --control "$T/none.sock" --to 127.0.0.1:1 --policy "$T/range.policy" \
	>/dev/null 2>"$T/range.err"
check "out of range: exit 2" [ $? -eq 2 ]
check "out of range: says so" grep -q "line 1: max_slowdown: 2 is out of range" "$T/range.err"
"$HM" migrate --insecure --control "$T/none.sock" --to 127.0.0.1:1 --policy "$T/missing" \
	>/dev/null 2>"$T/missing.err"
check "missing policy file: exit 2" [ $? -eq 2 ]
echo 'not json' >"$T/garbage.rec"
"$HM" policy simulate --trace "$T/garbage.rec" >/dev/null 2>"$T/garbage.err"
check "garbage recording: exit 1" [ $? -eq 1 ]
check "garbage recording: names the line" grep -q "line 1" "$T/garbage.err"
"$HM" policy simulate >/dev/null 2>&1
check "simulate without --trace: exit 2" [ $? -eq 2 ]
"$HM" policy keys >"$T/keys"
check "policy keys lists max_downtime_ms" grep -q '^max_downtime_ms *= 300' "$T/keys"
check "no hybridmig left running" none_running
finish
