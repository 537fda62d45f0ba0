#!/bin/sh
# Trust: only authenticated peers, and hostile ones cannot crash, fork or
# stall a migration. A destination survives strays (garbage, plain TCP, no
# certificate, another CA's certificate, a slowloris) and still takes the
# real source; a hostile destination (tests/e2e/fake_peer.py) answering
# with impossible error codes leaves the source's VM running.
. tests/e2e/lib.sh
require_kvm
PORT=$((10000 + ($$ + 10000) % 20000)) # below the ephemeral range (32768+)
FAKE="python3 tests/e2e/fake_peer.py"
sh tools/mkcerts.sh --loopback "$T/other" src >/dev/null 2>&1 || bad "a second CA for strangers"

# --- neither --tls-dir nor --insecure: both commands refuse to start -----------
"$HM" incoming --listen 127.0.0.1:1 >/dev/null 2>"$T/n1.err"
check "incoming without credentials: exit 2" [ $? -eq 2 ]
check "incoming without credentials: says why" grep -q "must be secured" "$T/n1.err"
start_bg n_src run --mem 64M --guest idle --control "$T/n.s.sock"
wait_sock "$T/n.s.sock"
"$HM" migrate --mode precopy --control "$T/n.s.sock" --to 127.0.0.1:1 >/dev/null 2>"$T/n2.err"
check "migrate without credentials: exit 2" [ $? -eq 2 ]
check "migrate without credentials: says why" grep -q "must be secured" "$T/n2.err"
"$HM" incoming --tls-dir "$T/nonexistent" --listen 127.0.0.1:1 >/dev/null 2>"$T/n3.err"
check "missing certificate files: exit 1 with the file named" grep -q "nonexistent" "$T/n3.err"

# --- a control path in use: the destination refuses to start, before any source ---
"$HM" incoming $TLS_DST --listen 127.0.0.1:$((PORT + 50)) --control "$T/n.s.sock" >/dev/null \
	2>"$T/n4.err"
check "incoming with a control socket in use: exit 1" [ $? -eq 1 ]
check "incoming with a control socket in use: says so" grep -qi "in use\|already" "$T/n4.err"
check "the VM owning that socket is untouched" [ "$("$HM" status --control "$T/n.s.sock" --json | json_get state)" = running ]
"$HM" stop --control "$T/n.s.sock" >/dev/null

# --- strays first, then the real source: the destination keeps waiting ---------
PORT=$((PORT + 1))
start_bg s_dst incoming $TLS_DST --listen 127.0.0.1:$PORT --control "$T/s.d.sock"
sleep 0.3
for mode in garbage plain nocert othercert slowloris; do
	$FAKE src $PORT "$T/pki" $mode >"$T/stray.$mode" 2>&1
	check "stray ($mode): gets nothing ($(cat "$T/stray.$mode"))" not grep -q "got [1-9]" "$T/stray.$mode"
done
check "the destination is still waiting" kill -0 "$PID_s_dst"
n=$(grep -c "refused a connection" "$T/s_dst.err")
check "the destination logged each refusal ($n of 5)" [ "$n" -ge 5 ]
R=$(writer_rate 20000) || exit 1
start_bg s_src run --mem 256M --guest dirtier:wss=32M,rate=$R --control "$T/s.s.sock"
wait_sock "$T/s.s.sock"
"$HM" migrate --mode precopy $TLS_SRC --control "$T/s.s.sock" --to 127.0.0.1:$PORT >/dev/null 2>"$T/s.err"
check "after the strays the real source migrates" [ $? -eq 0 ]
wait_sock "$T/s.d.sock"
check "verify ok on the destination" \
	[ "$("$HM" verify --control "$T/s.d.sock" --json | json_get verify)" = ok ]
"$HM" stop --control "$T/s.d.sock" >/dev/null
wait "$PID_s_src" "$PID_s_dst"

# --- a source whose certificate the destination does not trust ------------------
PORT=$((PORT + 1))
start_bg u_dst incoming $TLS_DST --listen 127.0.0.1:$PORT --wait 20
start_bg u_src run --mem 64M --guest idle --control "$T/u.s.sock"
wait_sock "$T/u.s.sock"
"$HM" migrate --mode precopy --tls-dir "$T/other/src" --control "$T/u.s.sock" --to 127.0.0.1:$PORT \
	>/dev/null 2>"$T/u.err"
check "untrusted source: migrate exits 1" [ $? -eq 1 ]
check "untrusted source: VM still running here" [ "$("$HM" status --control "$T/u.s.sock" --json | json_get state)" = running ]
check "untrusted source: the destination is still waiting" kill -0 "$PID_u_dst"
# and the wrong peer name
"$HM" migrate --mode precopy $TLS_SRC --tls-peer someone-else --control "$T/u.s.sock" --to 127.0.0.1:$PORT \
	>/dev/null 2>"$T/u2.err"
check "wrong --tls-peer: migrate exits 1" [ $? -eq 1 ]
check "wrong --tls-peer: the name is the reason" grep -qi "someone-else\|name\|match" "$T/u2.err"
"$HM" stop --control "$T/u.s.sock" >/dev/null
kill "$PID_u_dst"
wait "$PID_u_src" "$PID_u_dst"

# --- hostile destinations: impossible error codes, bad hello -----------------------
for mode in refuse:4294967295 refuse:2147483648 refuse:0 error:4294967295 badhello; do
	PORT=$((PORT + 1))
	$FAKE dest $PORT "$T/pki" $mode >"$T/h.out" 2>&1 &
	fp=$!
	PIDS="$PIDS $fp"
	start_bg h_src run --mem 128M --guest dirtier:wss=16M,rate=5000 --control "$T/h.s.sock"
	wait_sock "$T/h.s.sock"
	sleep 0.3
	"$HM" migrate --mode precopy $TLS_SRC --control "$T/h.s.sock" --to 127.0.0.1:$PORT >/dev/null 2>"$T/h.err"
	check "hostile destination ($mode): migrate exits 1" [ $? -eq 1 ]
	check "hostile destination ($mode): the source process lives" kill -0 "$PID_h_src"
	check "hostile destination ($mode): VM running on the source" \
		[ "$("$HM" status --control "$T/h.s.sock" --json | json_get state)" = running ]
	check "hostile destination ($mode): verify ok" \
		[ "$("$HM" verify --control "$T/h.s.sock" --json | json_get verify)" = ok ]
	"$HM" stop --control "$T/h.s.sock" >/dev/null
	wait "$PID_h_src"
	check "hostile destination ($mode): source exits 0" [ $? -eq 0 ]
	wait "$fp" 2>/dev/null
done

# --- a second source while a migration runs is told the destination is busy ------
PORT=$((PORT + 1))
start_bg b_dst incoming $TLS_DST --listen 127.0.0.1:$PORT --control "$T/b.d.sock"
start_bg b_src run --mem 256M --guest dirtier:wss=64M,fill=1 --control "$T/b.s.sock"
start_bg b2_src run --mem 64M --guest idle --control "$T/b2.s.sock"
wait_sock "$T/b.s.sock"
wait_sock "$T/b2.s.sock"
"$HM" migrate --mode precopy $TLS_SRC --control "$T/b.s.sock" --to 127.0.0.1:$PORT --bandwidth 10M --timeout 60 \
	>/dev/null 2>"$T/b.err" &
mp=$!
i=0
until grep -q '"migration":"precopy"' "$T/b.st" 2>/dev/null || [ $i -ge 100 ]; do
	"$HM" status --control "$T/b.s.sock" --json >"$T/b.st" 2>/dev/null
	sleep 0.1
	i=$((i + 1))
done
"$HM" migrate --mode precopy $TLS_SRC --control "$T/b2.s.sock" --to 127.0.0.1:$PORT >/dev/null 2>"$T/b2.err"
check "second source: migrate exits 6 (refused: busy)" [ $? -eq 6 ]
check "second source: told the destination is busy ($(cat "$T/b2.err"))" grep -q "busy" "$T/b2.err"
check "second source: its VM runs on" [ "$("$HM" status --control "$T/b2.s.sock" --json | json_get state)" = running ]
wait "$mp"
check "the first migration completes" [ $? -eq 0 ]
wait_sock "$T/b.d.sock"
check "verify ok on the destination" \
	[ "$("$HM" verify --control "$T/b.d.sock" --json | json_get verify)" = ok ]
"$HM" migrate --mode precopy $TLS_SRC --control "$T/b2.s.sock" --to 127.0.0.1:$PORT >/dev/null 2>"$T/b3.err"
check "with the VM running there, a source is still told busy" grep -q "busy" "$T/b3.err"
"$HM" stop --control "$T/b.d.sock" >/dev/null
"$HM" stop --control "$T/b2.s.sock" >/dev/null
wait "$PID_b_src" "$PID_b_dst" "$PID_b2_src"

# --- plain TCP is an explicit choice and works ------------------------------------
PORT=$((PORT + 1))
start_bg p_dst incoming --insecure --listen "[::1]:$PORT" --control "$T/p.d.sock"
R5=$(writer_rate 5000) || exit 1
start_bg p_src run --mem 128M --guest dirtier:wss=16M,rate=$R5 --control "$T/p.s.sock"
wait_sock "$T/p.s.sock"
"$HM" migrate --mode precopy --insecure --control "$T/p.s.sock" --to "[::1]:$PORT" >/dev/null 2>"$T/p.err"
check "--insecure on both sides, over IPv6 [::1]: migrates" [ $? -eq 0 ]
check "--insecure: the destination said it is plain TCP" grep -q "plain TCP" "$T/p_dst.err"
wait_sock "$T/p.d.sock"
"$HM" stop --control "$T/p.d.sock" >/dev/null
wait "$PID_p_src" "$PID_p_dst"

check "no hybridmig left running" none_running
finish
