#!/bin/sh
# make demo: the point of hybridmig in one run. A guest writes memory faster
# than the link (capped with --bandwidth) can copy it: pre-copy cannot
# converge and gives up, with the VM safe and verified on the source; then
# auto (the default mode: the eBPF-informed policy, docs/policy.md) sees a
# writer faster than the link and ends in post-copy, at once or after a
# first pass (the report then says hybrid), which hands the VM over in about
# a millisecond on hardware KVM; the missing pages follow on demand, and the
# guest verifies every page it wrote, now on the destination. The report
# shows the mode the policy chose and its reason. Both sides authenticate with TLS 1.3 (tools/mkcerts.sh).
O=${O:-build}
HM=$O/hybridmig
T=$(mktemp -d /tmp/hm-demo.XXXXXX)
PORT=$((10000 + $$ % 20000)) # below the ephemeral range (32768+)
RATE=20M
cleanup() {
	for p in $SRC $DST; do kill "$p" 2>/dev/null; done
	# a source still migrating or fenced refuses SIGTERM (it may hold the only
	# copy of pages); the demo's VMs are its own: nothing else needs them
	sleep 1
	for p in $SRC $DST; do
		kill -0 "$p" 2>/dev/null || continue
		echo "demo: stopping the VM process $p it started (SIGKILL)" >&2
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	[ -n "$KEEP_T" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM
set -e
# wait_listen FILE: until the incoming whose stderr is FILE listens
wait_listen() {
	i=0
	until grep -q "waiting for a VM" "$1" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || { cat "$1"; exit 1; }; sleep 0.1
	done
}
say() { printf '\n== %s\n' "$*"; }
show() { python3 -c "
import json,sys
d=json.loads(sys.stdin.read().strip().splitlines()[-1])
for k in sys.argv[1:]:
    if k in d: print('   %-26s %s' % (k, d[k]))" "$@"; }

say "credentials: a CA and two host certificates (tools/mkcerts.sh)"
sh tools/mkcerts.sh --loopback "$T/pki" src dst >/dev/null
say "source: 1 GiB VM, 2 vCPUs, writing 128 MiB at 20000 pages/s (80 MB/s) through a $RATE/s link"
"$HM" run --mem 1G --vcpus 2 --guest dirtier:wss=128M,rate=20000,pattern=zipf,io=5 \
	--control "$T/src.sock" 2>"$T/src.err" >"$T/src.out" &
SRC=$!
i=0
until "$HM" status --control "$T/src.sock" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$T/src.err"; exit 1; }; sleep 0.1
done
sleep 2
"$HM" status --control "$T/src.sock" | grep -E "work_units_per_s |io_bytes"

say "1. pre-copy, giving up after 5 s: the guest dirties faster than the link copies"
"$HM" incoming --tls-dir "$T/pki/dst" --listen 127.0.0.1:$PORT 2>"$T/dst1.err" >/dev/null &
DST=$!
wait_listen "$T/dst1.err"
set +e
"$HM" migrate --tls-dir "$T/pki/src" --control "$T/src.sock" --to 127.0.0.1:$PORT \
	--mode precopy --bandwidth $RATE --timeout 5 --json >"$T/pre.json" 2>/dev/null
echo "   migrate exit status: $?"
set -e
show rounds round_pages error <"$T/pre.json"
kill $DST 2>/dev/null || true; wait $DST 2>/dev/null || true
DST=
echo "   the VM is still here: $("$HM" status --control "$T/src.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')"
"$HM" verify --control "$T/src.sock" | grep -E "^ *verify "

say "2. auto: the policy measures the guest and the link, and chooses"
PORT=$((PORT + 1))
"$HM" incoming --tls-dir "$T/pki/dst" --listen 127.0.0.1:$PORT --control "$T/dst.sock" \
	2>"$T/dst.err" >/dev/null &
DST=$!
wait_listen "$T/dst.err"
set +e
"$HM" migrate --tls-dir "$T/pki/src" --control "$T/src.sock" --to 127.0.0.1:$PORT \
	--mode auto --bandwidth $RATE --json >"$T/post.json"
rc=$?
set -e
if [ $rc -ne 0 ]; then
	echo "   migrate exit status: $rc (README: exit codes)"
	show phase failure error <"$T/post.json" || true
	echo "   the destination said:"
	tail -n 5 "$T/dst.err" | sed 's/^/     /'
	exit $rc
fi
show requested_mode mode policy_reason total_ms downtime_ms guest_pause_ms bytes_wire remote_faults fault_latency_p50_us \
	fault_latency_p99_us work_units_per_s_before work_units_per_s_postcopy \
	work_units_per_s_after <"$T/post.json"
wait "$SRC" || true
SRC=

say "the guest checks every page it wrote, now on the destination"
"$HM" verify --control "$T/dst.sock"
"$HM" status --control "$T/dst.sock" | grep -E "state|work_units_per_s "
"$HM" stop --control "$T/dst.sock" >/dev/null
wait "$DST" || true
DST=
