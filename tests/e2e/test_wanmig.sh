#!/bin/sh
# Migration at distance: every mode over the test WAN at 100 ms RTT with a
# 1 Gbit/s cap (tools/testnet.sh up --delay-ms 50: a packet-level delay line,
# so TCP's window, ACK clock and the switch-over handshake see the real RTT).
# Each move must verify ok on the destination, keep the downtime within the
# limit the product promises (--downtime-limit 300), measure the RTT, and
# never estimate more bandwidth than the link has. The source's send buffer
# is sized for the path (src/sockbuf.c), which the log says at -v. Then a
# sequential writer in post-copy, whose faults are answered with the pages
# after them (policy/prefetch.c), must still verify ok.
. tests/e2e/lib.sh
require_kvm
require_uffd
net_up hwm$$ --delay-ms 50 --rate 1gbit
PORT=$((10000 + $$ % 20000)) # below the ephemeral range (32768+)
LIMIT=300

for mode in precopy postcopy hybrid auto; do
	n=wan_$mode
	move $mode $n --downtime-limit $LIMIT --timeout 120 -- --mem 128M --guest dirtier:wss=16M,rate=200,pattern=zipf
	check "$n: migrate exits 0" [ $? -eq 0 ]
	dt=$(json_get downtime_ms <"$T/$n.final")
	check "$n: downtime $dt ms within the $LIMIT ms limit" python3 -c "import sys; sys.exit(0 if 0 < float('$dt') <= $LIMIT else 1)"
	rtt=$(json_get rtt_ms <"$T/$n.final")
	check "$n: measured RTT $rtt ms >= 100" python3 -c "import sys; sys.exit(0 if float('$rtt') >= 100 else 1)"
	bw=$(json_get bandwidth_mbps <"$T/$n.final")
	check "$n: bandwidth estimate $bw Mbit/s not above the 1000 Mbit/s link" python3 -c "import sys; sys.exit(0 if float('$bw') <= 1000 else 1)"
	sb=$(json_get send_buffer_bytes <"$T/$n.final")
	check "$n: send buffer sized for the path ($sb bytes, root may force it)" [ "$sb" -ge $((32 << 20)) ]
	landed $n grows
done
# a sequential writer in post-copy: answers carry the run's next pages too
# (policy/prefetch.c), some of them also pushed on the bulk channel; every
# page must still be the guest's own
n=wan_seq
move postcopy $n --downtime-limit $LIMIT -- --mem 128M --guest dirtier:wss=32M,rate=2000
check "$n: migrate exits 0" [ $? -eq 0 ]
pf=$(json_get pages_prefetched <"$T/$n.final")
check "$n: prefetched pages reported ($pf)" [ "$pf" -ge 0 ]
landed $n grows
check "no hybridmig left running" none_running
finish
