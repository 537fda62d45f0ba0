#!/bin/sh
# Bulk throughput of the migration stream: a 4 GiB guest with 2 GiB written
# once and then idle (dirtier fill=1), migrated over the namespace veth
# uncapped and with a 10gbit tbf cap, pre-copy and post-copy. Prints one line
# per run; everything is removed on exit. Run: O=build sh tools/bench-fill.sh
O=${O:-build}
B=$(pwd)/$O/hybridmig
NET=fill$$
T=$(mktemp -d /tmp/hm-fill.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	bash tools/testnet.sh down $NET >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
for cap in none 10gbit; do
	if [ $cap = none ]; then bash tools/testnet.sh up $NET >/dev/null; else bash tools/testnet.sh up $NET --rate $cap >/dev/null; fi
	BA=$(bash tools/testnet.sh addr $NET b)
	for mode in precopy postcopy; do
		ip netns exec $NET-b "$B" incoming ${BENCH_TLS_DST:---insecure} --listen "$BA:7600" --control "$T/d" >/dev/null 2>&1 &
		PIDS="$PIDS $!"
		ip netns exec $NET-a "$B" run --mem 4G --guest dirtier:wss=2G,fill=1 --control "$T/s" >/dev/null 2>&1 &
		PIDS="$PIDS $!"
		i=0
		while [ $i -lt 120 ]; do
			u=$("$B" status --control "$T/s" --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['work_units'])" 2>/dev/null)
			[ "${u:-0}" -ge 524288 ] && break
			sleep 0.5
			i=$((i + 1))
		done
		ip netns exec $NET-a timeout 120 "$B" migrate ${BENCH_TLS_SRC:---insecure} --mode $mode --control "$T/s" --to "$BA:7600" --json | tail -1 | python3 -c "
import json,sys; d=json.load(sys.stdin); t=d['total_ms']/1e3
print('2 GiB, link %s, %s: %.2f s, %.0f MiB on the wire, %.2f Gbit/s, downtime %.2f ms' % ('$cap', '$mode', t, d['bytes_wire']/2**20, d['bytes_wire']*8/t/1e9, d['downtime_ms']))"
		sleep 1.5
		"$B" verify --control "$T/d" --json | python3 -c "import json,sys; print('  verify on the destination:', json.load(sys.stdin)['verify'])"
		"$B" stop --control "$T/d" >/dev/null
		wait
		PIDS=""
	done
	bash tools/testnet.sh down $NET >/dev/null
done
