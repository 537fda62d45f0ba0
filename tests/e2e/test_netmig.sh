#!/bin/sh
# Migration across the two-namespace test network (veth, tbf cap, delay
# proxy): a dirtier below the link's bandwidth, one through a 1 ms RTT
# proxy, and a link cut mid-migration that must leave the VM running and
# verifying ok on the source.
. tests/e2e/lib.sh
require_kvm
net_up hmt$$ --rate 1gbit
PORT=$((10000 + $$ % 20000)) # below the ephemeral range (32768+)
R=$(writer_rate 5000) || exit 1
R2=$(writer_rate 5000 2) || exit 1
IO=$(writer_io 5 2) || exit 1

# --- a dirtier below the 1 Gbit/s link, 2 vCPUs, I/O on ----------------------
bg_in b d1 incoming $TLS_DST --listen "$B:$PORT" --control "$T/d1.sock"
bg_in a s1 run --mem 256M --vcpus 2 --guest dirtier:wss=64M,rate=$R2,io=$IO --control "$T/s1.sock"
wait_sock "$T/s1.sock"
sleep 0.5
ip netns exec $NET-a "$HM" migrate --mode precopy $TLS_SRC --control "$T/s1.sock" --to "$B:$PORT" --json >"$T/m1" 2>&1
check "capped link: migrate exits 0" [ $? -eq 0 ]
wait_sock "$T/d1.sock"
check "capped link: verify ok on the destination" [ "$("$HM" verify --control "$T/d1.sock" --json | json_get verify)" = ok ]
bw=$(tail -1 "$T/m1" | json_get bandwidth_mbps)
check "capped link: measured bandwidth ($bw Mbit/s) is below the 1 Gbit/s cap" python3 -c "import sys; sys.exit(0 if 0 < float('$bw') < 1100 else 1)"
"$HM" stop --control "$T/d1.sock" >/dev/null
wait "$PID_d1" "$PID_s1"

# --- through the delay proxy: 1 ms RTT ------------------------------------------
PORT=$((PORT + 1))
bash tools/testnet.sh proxy $NET $((PORT + 100)) $PORT 0.5 >/dev/null
bg_in b d2 incoming $TLS_DST --listen "$B:$PORT" --control "$T/d2.sock"
bg_in a s2 run --mem 128M --guest dirtier:wss=16M,rate=$R --control "$T/s2.sock"
wait_sock "$T/s2.sock"
ip netns exec $NET-a "$HM" migrate --mode precopy $TLS_SRC --control "$T/s2.sock" --to "$A:$((PORT + 100))" --json >"$T/m2" 2>&1
check "1 ms RTT: migrate exits 0" [ $? -eq 0 ]
rtt=$(tail -1 "$T/m2" | json_get rtt_ms)
check "1 ms RTT: measured rtt $rtt ms >= 1" python3 -c "import sys; sys.exit(0 if float('$rtt') >= 1.0 else 1)"
wait_sock "$T/d2.sock"
check "1 ms RTT: verify ok on the destination" [ "$("$HM" verify --control "$T/d2.sock" --json | json_get verify)" = ok ]
"$HM" stop --control "$T/d2.sock" >/dev/null
wait "$PID_d2" "$PID_s2"

# --- the link is cut mid-migration --------------------------------------------------
PORT=$((PORT + 1))
bg_in b d3 incoming $TLS_DST --listen "$B:$PORT"
bg_in a s3 run --mem 512M --guest dirtier:wss=256M,rate=20000 --control "$T/s3.sock"
wait_sock "$T/s3.sock"
sleep 1
ip netns exec $NET-a "$HM" migrate --mode precopy $TLS_SRC --control "$T/s3.sock" --to "$B:$PORT" --bandwidth 20M >"$T/m3" 2>"$T/m3.err" &
mp=$!
sleep 2
bash tools/testnet.sh linkdown $NET
wait $mp
check "link cut: migrate exits 7 (link lost)" [ $? -eq 7 ]
check "link cut: the source says the destination stopped answering" grep -q "stopped answering\|connection to the destination was lost" "$T/m3.err"
check "link cut: VM still running on the source" [ "$("$HM" status --control "$T/s3.sock" --json | json_get state)" = running ]
check "link cut: verify ok on the source" [ "$("$HM" verify --control "$T/s3.sock" --json | json_get verify)" = ok ]
"$HM" stop --control "$T/s3.sock" >/dev/null
wait "$PID_s3"
bash tools/testnet.sh linkup $NET
kill "$PID_d3" 2>/dev/null
wait "$PID_d3"
check "no hybridmig left running" none_running
finish
