#!/bin/sh
# Migrations as jobs, end to end with real KVM guests: `job` shows what
# runs, `set-bandwidth` and `set-downtime` change a running migration's
# limits, Ctrl-C on `migrate` aborts before the switch-over (exit 4, the VM
# fine on the source) and leaves a post-copy that has begun to finish by
# itself (exit 130, the guest verifies on the destination), and every
# client command says so when no migration runs.
. tests/e2e/lib.sh
require_kvm
PORT=$((10000 + $$ % 20000)) # below the ephemeral range (32768+)

MPORT=$((PORT + 100))

# scrape PORT: the metrics at 127.0.0.1:PORT, on stdout
scrape() {
	python3 -c 'import sys,urllib.request as u; sys.stdout.write(u.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode())' "$1"
}

# metric FILE NAME: the value of an unlabelled sample
metric() {
	awk -v n="$2" '$1 == n { print $2 }' "$1"
}

# --- no migration: job says none, set-* are refused ----------------------------
start_bg idle run --mem 128M --guest idle --control "$T/idle.sock"
wait_sock "$T/idle.sock" || bad "idle: VM did not come up"
check "job with no migration: job none" [ "$("$HM" job --control "$T/idle.sock" --json | json_get job)" = none ]
"$HM" set-bandwidth --control "$T/idle.sock" 100MiB/s >/dev/null 2>"$T/sb.err"
check "set-bandwidth with no migration: exit 1" [ $? -eq 1 ]
check "set-bandwidth with no migration: says so" grep -q "no migration is running" "$T/sb.err"
"$HM" set-downtime --control "$T/idle.sock" 0 >/dev/null 2>&1
check "set-downtime 0: bad usage (exit 2)" [ $? -eq 2 ]
"$HM" set-bandwidth --control "$T/idle.sock" fast >/dev/null 2>&1
check "set-bandwidth fast: bad usage (exit 2)" [ $? -eq 2 ]
"$HM" stop --control "$T/idle.sock" >/dev/null

# --- a running pre-copy: job, live limits, then Ctrl-C aborts it ---------------
PORT=$((PORT + 1))
start_bg a_dst incoming $TLS_DST --listen 127.0.0.1:$PORT --control "$T/a.d.sock"
start_bg a_src run --mem 256M --guest dirtier:wss=128M,rate=50000 --control "$T/a.s.sock" \
	--metrics-listen 127.0.0.1:$MPORT
wait_sock "$T/a.s.sock" || bad "a: source did not come up"
"$HM" migrate --mode precopy $TLS_SRC --control "$T/a.s.sock" --to 127.0.0.1:$PORT \
	--bandwidth 8M --json >"$T/a.mig" 2>"$T/a.mig.err" &
mp=$!
PIDS="$PIDS $mp"
check "job: a migration runs" job_until "$T/a.s.sock" job migration
check "job: phase becomes pre-copy (after connecting, checks)" job_until "$T/a.s.sock" phase precopy
"$HM" job --control "$T/a.s.sock" --json >"$T/a.job"
check "job: the bandwidth limit is --bandwidth" [ "$(json_get bandwidth_limit <"$T/a.job")" = 8388608 ]
check "job: the destination" [ "$(json_get to <"$T/a.job")" = "127.0.0.1:$PORT" ]
check "job: schema 1" [ "$(json_get schema <"$T/a.job")" = 1 ]
check "job: a wall-clock time" grep -Eq '"ts":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"' "$T/a.job"
check "job: percent of the whole migration" python3 -c "import json,sys; j=json.load(open('$T/a.job')); sys.exit(0 if 0 <= j['percent'] <= 100 and j['bytes_total'] == j['bytes_processed'] + j['bytes_remaining'] else 1)"
check "status: shows the migration" [ "$("$HM" status --control "$T/a.s.sock" --json | json_get migration)" = precopy ]
scrape $MPORT >"$T/a.prom"
check "metrics: a migration runs" [ "$(metric "$T/a.prom" hybridmig_migration_running)" = 1 ]
check "metrics: pages processed" [ "$(metric "$T/a.prom" hybridmig_migration_data_processed_bytes)" -gt 0 ]
check "metrics: the bandwidth limit" [ "$(metric "$T/a.prom" hybridmig_migration_bandwidth_limit_bytes)" = 8388608 ]
check "metrics: the VM" grep -q '^hybridmig_vm_info{guest="dirtier",.*state="running"} 1$' "$T/a.prom"
"$HM" set-bandwidth --control "$T/a.s.sock" 12MiB/s >"$T/sb.out"
check "set-bandwidth: accepted" [ $? -eq 0 ]
check "set-bandwidth: the migration takes it up" job_until "$T/a.s.sock" bandwidth_limit 12582912
"$HM" set-downtime --control "$T/a.s.sock" 50 >/dev/null
check "set-downtime: accepted" [ $? -eq 0 ]
check "set-downtime: the migration takes it up" job_until "$T/a.s.sock" downtime_limit_ms 50.0
kill -INT "$mp"
wait_exit "$mp" 30
rc=$?
check "Ctrl-C before the switch-over: migrate exits 4 (cancelled) [$rc]" [ $rc -eq 4 ]
check "Ctrl-C: says it aborts" grep -q "interrupted: aborting the migration" "$T/a.mig.err"
check "Ctrl-C: the report says cancelled" [ "$(tail -1 "$T/a.mig" | json_get failure)" = cancelled ]
check "Ctrl-C: progress lines showed the new bandwidth limit" grep -q '"bandwidth_limit":12582912' "$T/a.mig"
check "job after: last failed, cancelled" [ "$("$HM" job --control "$T/a.s.sock" --json | json_get failure)" = cancelled ]
scrape $MPORT >"$T/a2.prom"
check "metrics after: no migration runs" [ "$(metric "$T/a2.prom" hybridmig_migration_running)" = 0 ]
check "metrics after: failed, cancelled" grep -q '^hybridmig_migration_failed{failure="cancelled"} 1$' "$T/a2.prom"
check "Ctrl-C: the VM still runs on the source" [ "$("$HM" status --control "$T/a.s.sock" --json | json_get state)" = running ]
check "Ctrl-C: verify ok on the source" [ "$("$HM" verify --control "$T/a.s.sock" --json | json_get verify)" = ok ]
"$HM" stop --control "$T/a.s.sock" >/dev/null
kill "$PID_a_dst" 2>/dev/null

# --- a post-copy that has begun: Ctrl-C leaves it to finish --------------------
PORT=$((PORT + 1))
start_bg p_dst incoming $TLS_DST --listen 127.0.0.1:$PORT --control "$T/p.d.sock" \
	--metrics-listen 127.0.0.1:$((MPORT + 1))
scrape $((MPORT + 1)) >"$T/p0.prom"
check "incoming metrics: waiting" [ "$(metric "$T/p0.prom" hybridmig_incoming_waiting)" = 1 ]
start_bg p_src run --mem 256M --guest dirtier:wss=128M,rate=20000 --control "$T/p.s.sock"
wait_sock "$T/p.s.sock" || bad "p: source did not come up"
sleep 1 # the working set is written
"$HM" migrate --mode postcopy $TLS_SRC --control "$T/p.s.sock" --to 127.0.0.1:$PORT \
	--bandwidth 16M --json >"$T/p.mig" 2>"$T/p.mig.err" &
mp=$!
PIDS="$PIDS $mp"
check "post-copy: job shows it fenced" job_until "$T/p.s.sock" fenced true
# 128 MiB at 16 MiB/s: pages arrive for 8 s at least
wait_sock "$T/p.d.sock" || bad "p: destination control socket"
"$HM" trace --control "$T/p.d.sock" --seconds 1 >/dev/null 2>"$T/ptr.err"
check "trace on a destination still receiving pages: refused" [ $? -eq 1 ]
check "trace refused: says the pages are still arriving" grep -q "still arriving" "$T/ptr.err"
"$HM" set-bandwidth --control "$T/p.s.sock" 32M >/dev/null 2>"$T/psb.err"
check "set-bandwidth after the switch-over: refused" [ $? -eq 1 ]
check "set-bandwidth after the switch-over: says why" grep -q "switch-over has begun" "$T/psb.err"
kill -INT "$mp"
wait_exit "$mp" 30
rc=$?
check "Ctrl-C after the switch-over: migrate exits 130 [$rc]" [ $rc -eq 130 ]
check "Ctrl-C after the switch-over: says it goes on and how to watch it" \
	grep -q "migration goes on.*hybridmig job --control" "$T/p.mig.err"
wait_exit "$PID_p_src" 120
check "post-copy goes on: the source exits 0 once every page is there" [ $? -eq 0 ]
wait_sock "$T/p.d.sock" || bad "p: destination control socket"
check "post-copy goes on: verify ok on the destination" \
	[ "$("$HM" verify --control "$T/p.d.sock" --json | json_get verify)" = ok ]
scrape $((MPORT + 1)) >"$T/p1.prom"
check "incoming metrics: the VM arrived" [ "$(metric "$T/p1.prom" hybridmig_incoming_waiting)" = 0 ]
check "incoming metrics: no page missing" [ "$(metric "$T/p1.prom" hybridmig_incoming_postcopy_missing_pages)" = 0 ]
check "incoming metrics: remote faults in the latency histogram" \
	[ "$(metric "$T/p1.prom" hybridmig_postcopy_fault_latency_seconds_count)" -gt 0 ]
check "incoming metrics: +Inf bucket = count" [ "$(awk '/_bucket{le="\+Inf"}/ { print $2 }' "$T/p1.prom")" = "$(metric "$T/p1.prom" hybridmig_postcopy_fault_latency_seconds_count)" ]
check "incoming metrics: the destination's VM" grep -q '^hybridmig_vm_info{' "$T/p1.prom"
"$HM" stop --control "$T/p.d.sock" >/dev/null
wait "$PID_p_dst"
check "post-copy: destination exits 0 on stop" [ $? -eq 0 ]

wait "$PID_idle" "$PID_a_src" "$PID_a_dst" 2>/dev/null
check "no hybridmig left running" none_running
finish
