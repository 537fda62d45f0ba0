#!/bin/sh
# make demo: start a dirtier guest (2 vCPUs, DMA device on), start an
# incoming hybridmig, migrate the guest live between the two local
# processes, verify it on the destination and print the report.
O=${O:-build}
HM=$O/hybridmig
T=$(mktemp -d /tmp/hm-demo.XXXXXX)
PORT=$((30000 + $$ % 20000))
cleanup() {
	[ -n "$SRC" ] && kill "$SRC" 2>/dev/null
	[ -n "$DST" ] && kill "$DST" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
set -e
echo "== credentials: a CA and two host certificates (tools/mkcerts.sh), TLS 1.3 both ways"
sh tools/mkcerts.sh --loopback "$T/pki" src dst >/dev/null
echo "== source: 1 GiB VM, 2 vCPUs, dirtier writing 128 MiB at 20k pages/s (zipf), DMA device 50 MB/s"
"$HM" run --mem 1G --vcpus 2 --guest dirtier:wss=128M,rate=20000,pattern=zipf,io=50 \
	--control "$T/src.sock" 2>"$T/src.err" >"$T/src.out" &
SRC=$!
echo "== destination: hybridmig incoming --tls-dir DST --listen 127.0.0.1:$PORT"
"$HM" incoming --tls-dir "$T/pki/dst" --listen 127.0.0.1:$PORT --control "$T/dst.sock" 2>"$T/dst.err" >/dev/null &
DST=$!
i=0
until "$HM" status --control "$T/src.sock" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$T/src.err"; exit 1; }; sleep 0.1
done
sleep 2
"$HM" status --control "$T/src.sock" | grep -E "work_units_per_s |io_bytes"
echo "== hybridmig migrate --mode precopy --to 127.0.0.1:$PORT"
"$HM" migrate --tls-dir "$T/pki/src" --control "$T/src.sock" --to 127.0.0.1:$PORT --mode precopy
wait "$SRC" || true
SRC=
echo "== the guest checks every page it wrote, now on the destination"
"$HM" verify --control "$T/dst.sock"
"$HM" status --control "$T/dst.sock" | grep -E "state|work_units_per_s "
"$HM" stop --control "$T/dst.sock" >/dev/null
wait "$DST" || true
DST=
