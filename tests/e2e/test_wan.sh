#!/bin/sh
# The WAN of the test network (tools/testnet.sh up --delay-ms, tools/wanline.c):
# ping and TCP see the delay both ways (never less than 2*D), data crosses
# the line intact in both directions, the line never delivers faster than its
# cap, a cut link stops traffic and a restored one carries it again, and down
# leaves nothing behind. Bounds only: the line may be slower on a busy machine,
# never faster or earlier. No KVM needed.
. tests/e2e/lib.sh
if [ ! -c /dev/net/tun ] || ! ip netns add hmw-probe$$ 2>/dev/null; then
	echo "skip: no network namespaces or no /dev/net/tun"
	exit 77
fi
ip netns del hmw-probe$$
D=20	      # ms each way
RATE=200mbit  # the cap, in wire bytes (IP length + 14) per second
CAP=200000000 # the same, in bit/s
net_up hmw$$ --delay-ms $D --rate $RATE

cat >"$T/wan.py" <<'EOF'
import hashlib, os, socket, sys, time
def serve(host, port):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port)); ls.listen(4); print("ready", flush=True)
    c, _ = ls.accept(); h = hashlib.sha256(); n = n0 = 0; first = last = None
    while True:
        b = c.recv(1 << 20)
        if not b: break
        last = time.monotonic(); h.update(b); n += len(b)
        if first is None: first, n0 = last, n
    # the bytes after the first read over the time they took: the receive rate
    c.sendall(("%d %s %.1f\n" % (n, h.hexdigest(), (n - n0) * 8 / max(last - first, 1e-9))).encode())
    # then the same back the other way
    data = os.urandom(1 << 20) * 4
    c.sendall(hashlib.sha256(data).hexdigest().encode() + b"\n" + data); c.close()
def send(host, port, mib):
    s = socket.create_connection((host, port), timeout=60)
    data = os.urandom(1 << 20) * mib; s.sendall(data); s.shutdown(socket.SHUT_WR)
    f = s.makefile("rb"); n, digest, bps = f.readline().split()
    back_digest = f.readline().strip().decode(); back = f.read()
    print("sent_ok" if int(n) == len(data) and digest.decode() == hashlib.sha256(data).hexdigest() else "sent_bad")
    print("back_ok" if back_digest == hashlib.sha256(back).hexdigest() and len(back) == 4 << 20 else "back_bad")
    print(bps.decode())
m = sys.argv[1]
if m == "serve": serve(sys.argv[2], int(sys.argv[3]))
else: send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
EOF
# ping SIDE HOST COUNT WAIT_S: the smallest ICMP round trip in ms (tools/netcheck.py), or "none"
ping() {
	ip netns exec "$NET-$1" python3 tools/netcheck.py icmp "$2" "$3" 0 "$4" |
		sed -n 's/^min \([0-9.]*\) ms.*/\1/p; s/^no answer.*/none/p'
}
at_least() { python3 -c "import sys; sys.exit(0 if '$1' != 'none' and float('$1') >= float('$2') else 1)"; }

# --- delay: ICMP both ways, TCP ---------------------------------------------------
rtt_ab=$(ping a "$B" 5 2)
rtt_ba=$(ping b "$A" 5 2)
check "ping a->b answered, smallest RTT $rtt_ab ms >= $((2 * D)) ms" at_least "$rtt_ab" $((2 * D))
check "ping b->a answered, smallest RTT $rtt_ba ms >= $((2 * D)) ms" at_least "$rtt_ba" $((2 * D))

# --- data both ways, intact, never above the cap -------------------------------------
PORT=$((10000 + $$ % 20000))
ip netns exec "$NET-b" python3 "$T/wan.py" serve "$B" $PORT >"$T/serve.out" 2>&1 &
PIDS="$PIDS $!"
i=0
while ! grep -q ready "$T/serve.out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
ip netns exec "$NET-a" timeout 120 python3 "$T/wan.py" send "$B" $PORT 12 >"$T/send.out" 2>&1
check "TCP a->b: 12 MiB arrive intact" grep -qx sent_ok "$T/send.out"
check "TCP b->a: 4 MiB arrive intact" grep -qx back_ok "$T/send.out"
bps=$(tail -1 "$T/send.out")
check "received at $bps bit/s, not above the ${RATE} cap" python3 -c "import sys; sys.exit(0 if 0 < float('$bps') <= $CAP * 1.02 else 1)"
bash tools/testnet.sh stats "$NET" >"$T/stats" 2>&1
check "the line counts what it delivered" grep -q '^a->b: delivered [1-9][0-9]* packets' "$T/stats"
wait_us=$(sed -n 's/^a->b:.*longest queue wait \([0-9]*\) us.*/\1/p' "$T/stats")
check "no packet waited longer than the queue allows ($wait_us us <= $((2 * D)) ms)" [ "${wait_us:-99999999}" -le $((2 * D * 1000)) ]

# --- a cut link and its return ----------------------------------------------------------
bash tools/testnet.sh linkdown "$NET"
check "link down: ping a->b gets no answer" [ "$(ping a "$B" 2 0.5)" = none ]
bash tools/testnet.sh linkup "$NET"
rtt=$(ping a "$B" 5 2)
check "link up again: ping a->b answered, RTT $rtt ms >= $((2 * D)) ms" at_least "$rtt" $((2 * D))

# --- bad input, then down ----------------------------------------------------------------
check "up with a bad --delay-ms fails with a message" sh -c 'bash tools/testnet.sh up hmwbad$$ --delay-ms 1x 2>&1 | grep -q "delay-ms must be a number"'
check "up with --queue-ms but no delay fails" not sh -c "bash tools/testnet.sh up hmwbad$$ --queue-ms 5 2>/dev/null"
bash tools/testnet.sh down hmwbad$$ >/dev/null 2>&1
wl=$(cat /tmp/hm-testnet-$NET/wanline.pid)
bash tools/testnet.sh down "$NET"
check "down: both namespaces are gone" not sh -c "ip netns list | grep -q '^$NET-[ab]\\b'"
check "down: the line has stopped" not kill -0 "$wl" 2>/dev/null
check "down: no state left" [ ! -e /tmp/hm-testnet-$NET ]
finish
