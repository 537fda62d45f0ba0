#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-vmm: how fast the VMM runs its guests (make bench-vmm).
#
#  1. write rate of the dirtier guest (rate=0, pattern=seq, warm 256M working
#     set in 1G) against one host thread doing the same writes
#     (tools/bench_hostwrite.c); both measured over the window t=2..5 s, so the
#     guest's first touch of its working set (~3.3 s/GiB nested) is left out;
#  2. guest work units/s with the I/O device at 0, 100 and 1000 MB/s, with
#     the I/O rate achieved and how often the ring was full (window t=1..4 s);
#  3. time from `hybridmig run` to the first guest progress report of a 4 GiB
#     guest: first_progress_ms from the summary, and the wall clock seen from
#     outside (poll `hybridmig status` until work_units > 0).
#
# Each figure is the median of $REPS runs. Only unix sockets, no network.
# Every run is bounded (--seconds, --timeout, a watchdog); VMs this script
# started are stopped on exit. Figures go to $O/bench-vmm.txt.
#
# Environment: O (build dir, default build), REPS (default 3).

O=${O:-build}
REPS=${REPS:-3}
HM=$O/hybridmig
HOSTW=$O/tools/bench_hostwrite
OUT=$O/bench-vmm.txt
WATCHDOG_S=175

VM_PIDS=""
WD_PID=""
TMP=$(mktemp -d /tmp/hm-bench-vmm.XXXXXX) || exit 1

# ---- clean-up --------------------------------------------------------------

# Stop (TERM, then KILL after 2 s) the processes given as arguments.
reap() {
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "$@"; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 20 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}

cleanup() {
	trap - EXIT INT TERM HUP PIPE
	# shellcheck disable=SC2086 # a list of pids
	[ -n "$VM_PIDS" ] && reap $VM_PIDS
	[ -n "$WD_PID" ] && kill -TERM "$WD_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "bench-vmm: interrupted" >&2; exit 130' INT TERM HUP PIPE

fail() {
	echo "bench-vmm: $*" >&2
	exit 1
}

# ---- helpers ---------------------------------------------------------------

# jget KEY: the value of KEY in the one-line JSON object on stdin (quotes stripped).
jget() {
	sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" | tr -d '"'
}

# median: of the numbers on stdin, one a line.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.6f\n", m }'
}

# calc EXPR: evaluate a floating-point awk expression.
calc() {
	awk "BEGIN { printf \"%.6f\\n\", ($1) }"
}

now_ns() {
	date +%s%N
}

status() {
	"$HM" status --control "$1" --json --timeout 5 2>/dev/null
}

# vm_start NAME SECONDS ARGS...: run a VM serving $TMP/NAME.sock in the background,
# its summary going to $TMP/NAME.json; --seconds bounds it even if the stop is lost.
vm_start() {
	name=$1
	secs=$2
	shift 2
	"$HM" run --control "$TMP/$name.sock" --json --seconds "$secs" "$@" \
		>"$TMP/$name.json" 2>"$TMP/$name.err" &
	VM_PID=$!
	VM_PIDS="$VM_PIDS $VM_PID"
}

# vm_wait_up NAME: wait (at most 10 s) until the control socket answers.
vm_wait_up() {
	i=0
	until status "$TMP/$1.sock" >/dev/null; do
		kill -0 "$VM_PID" 2>/dev/null || fail "$1: hybridmig exited: $(cat "$TMP/$1.err")"
		[ $i -ge 200 ] && fail "$1: control socket did not come up"
		sleep 0.05
		i=$((i + 1))
	done
}

# vm_finish NAME: verify and stop the VM, wait for it, leave its summary in $TMP/NAME.json.
vm_finish() {
	"$HM" verify --control "$TMP/$1.sock" --json --timeout 30 >/dev/null 2>&1
	"$HM" stop --control "$TMP/$1.sock" --json --timeout 5 >/dev/null 2>&1
	i=0
	while kill -0 "$VM_PID" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	reap "$VM_PID"
	VM_PIDS=$(echo "$VM_PIDS" | tr ' ' '\n' | grep -vx "$VM_PID" | tr '\n' ' ')
	[ -s "$TMP/$1.json" ] || fail "$1: no summary: $(cat "$TMP/$1.err")"
}

# sample_at NAME T: sleep until the VM's uptime is T s, then leave its status in $TMP/NAME.sT.
sample_at() {
	up=$(status "$TMP/$1.sock" | jget uptime_s)
	[ -n "$up" ] || fail "$1: status failed"
	sleep "$(calc "$2 - $up > 0 ? $2 - $up : 0")"
	status "$TMP/$1.sock" >"$TMP/$1.s$2" || fail "$1: status failed"
}

# window NAME T1 T2 KEY: per-second rate of KEY between samples T1 and T2.
window() {
	a=$(jget "$4" <"$TMP/$1.s$2")
	b=$(jget "$4" <"$TMP/$1.s$3")
	ua=$(jget uptime_s <"$TMP/$1.s$2")
	ub=$(jget uptime_s <"$TMP/$1.s$3")
	calc "($b - $a) / ($ub - $ua)"
}

# delta NAME T1 T2 KEY: change of KEY between samples T1 and T2.
delta() {
	calc "$(jget "$4" <"$TMP/$1.s$3") - $(jget "$4" <"$TMP/$1.s$2")"
}

gib_s() {
	calc "$1 * 4096 / 1073741824"
}

say() {
	echo "$*" | tee -a "$OUT"
}

# ---- 1. guest vs host write rate -------------------------------------------

bench_write() {
	wss=256M
	wss_b=$((256 << 20))
	: >"$TMP/w.guest"
	: >"$TMP/w.host"
	for r in $(seq "$REPS"); do
		vm_start w 20 --mem 1G --vcpus 1 --guest "dirtier:wss=$wss,rate=0,pattern=seq,io=0"
		vm_wait_up w
		sample_at w 2
		sample_at w 5
		vm_finish w
		g=$(window w 2 5 work_units)
		v=$(jget verify <"$TMP/w.json")
		[ "$v" = ok ] || fail "write: verify $v"
		echo "$g" >>"$TMP/w.guest"
		h=$("$HOSTW" "$wss_b" 2 5 | sed -n 's/.*pages_per_s=\([0-9.]*\).*/\1/p')
		[ -n "$h" ] || fail "bench_hostwrite failed"
		echo "$h" >>"$TMP/w.host"
		say "$(printf '  run %d: guest %.0f pages/s (%.2f GiB/s, verify %s), host %.0f pages/s (%.2f GiB/s)' \
			"$r" "$g" "$(gib_s "$g")" "$v" "$h" "$(gib_s "$h")")"
	done
	g=$(median <"$TMP/w.guest")
	h=$(median <"$TMP/w.host")
	say "$(printf '  median: guest %.2f GiB/s, host thread %.2f GiB/s, guest/host %.3f' \
		"$(gib_s "$g")" "$(gib_s "$h")" "$(calc "$g / $h")")"
}

# ---- 2. work units with the I/O device -------------------------------------

bench_io_one() {
	io=$1
	: >"$TMP/io.wu"
	: >"$TMP/io.bytes"
	: >"$TMP/io.full"
	for r in $(seq "$REPS"); do
		vm_start io 20 --mem 1G --vcpus 1 --guest "dirtier:wss=64M,rate=0,pattern=seq,io=$io"
		vm_wait_up io
		sample_at io 1
		sample_at io 4
		vm_finish io
		wu=$(window io 1 4 work_units)
		ib=$(window io 1 4 io_bytes)
		full=$(delta io 1 4 io_ring_full)
		v=$(jget verify <"$TMP/io.json")
		[ "$v" = ok ] || fail "io=$io: verify $v"
		echo "$wu" >>"$TMP/io.wu"
		echo "$ib" >>"$TMP/io.bytes"
		echo "$full" >>"$TMP/io.full"
	done
	wu=$(median <"$TMP/io.wu")
	ib=$(median <"$TMP/io.bytes")
	full=$(median <"$TMP/io.full")
	say "$(printf '  io=%-4s MB/s: %9.0f units/s (%.2f GiB/s)  io %7.1f MB/s achieved  io_ring_full %6.0f in 3 s  (verify ok)' \
		"$io" "$wu" "$(gib_s "$wu")" "$(calc "$ib / 1000000")" "$full")"
}

# ---- 3. time to first progress ---------------------------------------------

bench_first() {
	: >"$TMP/f.json_ms"
	: >"$TMP/f.wall_ms"
	: >"$TMP/f.poll_ms"
	for r in $(seq "$REPS"); do
		rm -f "$TMP/f.sock"
		t0=$(now_ns)
		vm_start f 20 --mem 4G --vcpus 1 --guest dirtier
		i=0
		while :; do
			tp=$(now_ns)
			wu=$(status "$TMP/f.sock" | jget work_units)
			t1=$(now_ns)
			[ -n "$wu" ] && [ "$wu" -gt 0 ] && break
			kill -0 "$VM_PID" 2>/dev/null || fail "first: hybridmig exited: $(cat "$TMP/f.err")"
			[ $i -ge 5000 ] && fail "first: no progress"
			i=$((i + 1))
		done
		vm_finish f
		fp=$(jget first_progress_ms <"$TMP/f.json")
		wall=$(calc "($t1 - $t0) / 1e6")
		poll=$(calc "($t1 - $tp) / 1e6")
		echo "$fp" >>"$TMP/f.json_ms"
		echo "$wall" >>"$TMP/f.wall_ms"
		echo "$poll" >>"$TMP/f.poll_ms"
		say "$(printf '  run %d: first_progress_ms %.3f, wall clock %.1f ms (%d polls, last status call %.1f ms)' \
			"$r" "$fp" "$wall" "$((i + 1))" "$poll")"
	done
	say "$(printf '  median: first_progress_ms %.3f (VM start -> first report), wall clock %.1f ms (exec -> status shows work_units > 0, includes one status call of %.1f ms)' \
		"$(median <"$TMP/f.json_ms")" "$(median <"$TMP/f.wall_ms")" "$(median <"$TMP/f.poll_ms")")"
}

# ---- main --------------------------------------------------------------------

[ -x "$HM" ] || fail "$HM not built (make)"
mkdir -p "$O/tools" || exit 1
cc -O2 -Wall -Wextra -I. -o "$HOSTW" tools/bench_hostwrite.c || fail "cannot build $HOSTW"
: >"$OUT"

# bounded no matter what: the watchdog ends this script, the trap the VMs
(
	trap 'kill "$s" 2>/dev/null; exit 0' TERM
	sleep "$WATCHDOG_S" &
	s=$!
	wait "$s" && echo "bench-vmm: watchdog: over ${WATCHDOG_S} s" >&2 && kill -TERM $$
) &
WD_PID=$!

say "bench-vmm: $(uname -r), $(nproc) cpus, median of $REPS runs, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "1. write rate, dirtier rate=0 pattern=seq wss=256M in 1G vs host thread (hm_page_fill, warm), window t=2..5 s"
bench_write
say "2. dirtier (wss=64M, rate=0, seq) with the I/O device, window t=1..4 s"
for io in 0 100 1000; do
	bench_io_one "$io"
done
say "3. time to first guest progress report, --mem 4G, dirtier"
bench_first
echo "bench-vmm: figures in $OUT"
