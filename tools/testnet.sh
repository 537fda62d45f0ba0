#!/usr/bin/env bash
# testnet.sh — a private two-namespace test network for migration tests.
#
#   tools/testnet.sh up NAME [--rate RATE] [--burst BYTES] [--net X]
#       Create network namespaces NAME-a and NAME-b joined by a veth pair
#       (veth-a in NAME-a with 10.231.X.1/24, veth-b in NAME-b with
#       10.231.X.2/24) and bring up lo in both. X is given by --net (1..254)
#       or derived from NAME: X = (cksum of NAME) % 254 + 1 — deterministic;
#       two nets that happen to share X do not interfere (every net lives in
#       its own namespaces). If NAME-a/NAME-b already exist (leftovers of a
#       killed test) they are torn down first.
#       --rate RATE caps each direction with `tc tbf` on both veth ends
#       (RATE as tc spells it: 1gbit, 500mbit, 10gbit, 125mbps...). The burst
#       defaults to rate/HZ bytes, at least 128 KiB (HZ from the kernel
#       config, 100 if unknown; HZ=250 here: 1gbit -> 500000 B, 10gbit ->
#       5000000 B); measured one TCP stream: 1gbit -> 0.96 Gbit/s, 10gbit ->
#       9.5-9.6 Gbit/s (uncapped 13-19). tbf latency 5 ms (queue = 5 ms of
#       rate + burst). --burst BYTES overrides.
#       (--delay-ms is accepted here as a convenience: it is a reminder that
#       delay goes through a proxy, see `proxy`; up itself starts none.)
#   tools/testnet.sh proxy NAME LISTEN_PORT TARGET_PORT DELAY_MS [--max-conns N]
#       Start delayproxy in the background in NAME-a, listening on
#       10.231.X.1:LISTEN_PORT and forwarding to 10.231.X.2:TARGET_PORT with
#       DELAY_MS (fractional ok) added each way, i.e. RTT + 2*DELAY_MS. A
#       client in NAME-a that connects to 10.231.X.1:LISTEN_PORT reaches the
#       server listening on TARGET_PORT in NAME-b. Returns once the proxy
#       listens. Pid and log: /tmp/hm-testnet-NAME/proxy-LISTEN_PORT.{pid,log}
#   tools/testnet.sh unproxy NAME LISTEN_PORT   stop that proxy
#   tools/testnet.sh down NAME
#       Remove everything: stop the proxies, terminate every process still
#       inside NAME-a/NAME-b (TERM, then KILL after 2 s), delete both
#       namespaces (that removes the veth pair) and the state directory.
#       Idempotent; exits 0 when nothing is left, even if nothing existed.
#   tools/testnet.sh exec NAME a|b CMD...       run CMD in NAME-a / NAME-b
#   tools/testnet.sh addr NAME a|b              print 10.231.X.1 / 10.231.X.2
#   tools/testnet.sh linkdown NAME | linkup NAME
#       Set both veth ends down / up (a cut link: sends fail with
#       "network unreachable", TCP connections retransmit and survive if the
#       link comes back before they time out). The tbf qdisc is kept.
#   tools/testnet.sh selftest NAME [--seconds S] [--delays "0.05 0.5 5"] [up options]
#       Measure TCP throughput a->b (S seconds, default 2) and the round trip
#       of 64-byte ping-pong messages, directly and through a delayproxy for
#       each delay. Uses ports 47100-47199. If NAME is not up, brings it up
#       with the given up options and takes it down again at the end.
#
# Needs root (ip netns), iproute2, cc for delayproxy (built into
# ${O:-build}/tools/delayproxy when missing or older than its source), and
# python3 for selftest. Typical test use:
#   trap 'tools/testnet.sh down t1' EXIT; tools/testnet.sh up t1 --rate 1gbit
#   tools/testnet.sh exec t1 b "$O/hybridmig" ... &        # server in b
#   tools/testnet.sh proxy t1 4000 4001 0.5
#   tools/testnet.sh exec t1 a "$O/hybridmig" ... "$(tools/testnet.sh addr t1 a)":4000
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
O=${O:-build}
case $O in /*) OUT=$O ;; *) OUT=$ROOT/$O ;; esac
PROXY_BIN=$OUT/tools/delayproxy
PROXY_SRC=$ROOT/tools/delayproxy.c

die() { echo "testnet: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//' >&2; exit 2; }

check_name() {
	[ -n "${1:-}" ] || usage
	case $1 in *[!A-Za-z0-9_.-]*|.*) die "bad NAME '$1' (letters, digits, _ . -)" ;; esac
	[ ${#1} -le 40 ] || die "NAME '$1' too long"
}
statedir() { echo "/tmp/hm-testnet-$1"; }
ns_exists() { [ -e "/var/run/netns/$1" ] || ip netns list 2>/dev/null | grep -q "^$1\( \|$\)"; }
derive_net() { echo $(( $(printf %s "$1" | cksum | cut -d' ' -f1) % 254 + 1 )); }
net_of() { # X of a net that is up (recorded) or derived
	local f; f=$(statedir "$1")/net
	if [ -s "$f" ]; then cat "$f"; else derive_net "$1"; fi
}
need_up() { ns_exists "$1-a" && ns_exists "$1-b" || die "net '$1' is not up (tools/testnet.sh up $1)"; }

kernel_hz() {
	local hz=""
	if [ -r /proc/config.gz ]; then
		hz=$(zcat /proc/config.gz 2>/dev/null | sed -n 's/^CONFIG_HZ=//p')
	elif [ -r "/boot/config-$(uname -r)" ]; then
		hz=$(sed -n 's/^CONFIG_HZ=//p' "/boot/config-$(uname -r)")
	fi
	echo "${hz:-100}"
}

# RATE (tc syntax) -> bytes per second, empty if not understood.
rate_bytes() {
	echo "$1" | awk '{
		s = tolower($0)
		if (!match(s, /^[0-9]+(\.[0-9]+)?/)) exit
		v = substr(s, 1, RLENGTH); u = substr(s, RLENGTH + 1)
		m["bit"]=1/8; m["kbit"]=1e3/8; m["mbit"]=1e6/8; m["gbit"]=1e9/8; m["tbit"]=1e12/8
		m["bps"]=1; m["kbps"]=1e3; m["mbps"]=1e6; m["gbps"]=1e9; m["tbps"]=1e12
		m["kibit"]=1024/8; m["mibit"]=1048576/8; m["gibit"]=1073741824/8
		m["kibps"]=1024; m["mibps"]=1048576; m["gibps"]=1073741824
		if (u == "") u = "bit"
		if (!(u in m)) exit
		printf "%.0f\n", v * m[u]
	}'
}

ensure_proxy_bin() {
	if [ -x "$PROXY_BIN" ] && ! [ "$PROXY_SRC" -nt "$PROXY_BIN" ]; then return 0; fi
	mkdir -p "$OUT/tools" || die "cannot create $OUT/tools"
	local tmp="$PROXY_BIN.tmp.$$"
	# in a subshell: a signal to this script must not leave the temp file
	( trap 'rm -f "$tmp"' EXIT
	  ${CC:-cc} -O2 -Wall -Wextra -Werror -o "$tmp" "$PROXY_SRC" -lpthread && mv -f "$tmp" "$PROXY_BIN"
	) || die "building $PROXY_BIN failed"
}

# ---- down ----
stop_pid() { # PID [name to check] -> TERM, wait 2 s, KILL
	local pid=$1 want=${2:-}
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 0
	if [ -n "$want" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$want" ]; then return 0; fi
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 20); do [ -d "/proc/$pid" ] || return 0; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null
	for _ in $(seq 20); do [ -d "/proc/$pid" ] || return 0; sleep 0.1; done
}

stop_proxy_file() {
	local f=$1
	[ -f "$f" ] || return 0
	stop_pid "$(cat "$f" 2>/dev/null)" delayproxy
	rm -f "$f"
}

cmd_down() {
	local name=$1 sd ns f pids left=0
	check_name "$name"
	sd=$(statedir "$name")
	for f in "$sd"/proxy-*.pid; do stop_proxy_file "$f"; done
	for ns in "$name-a" "$name-b"; do
		ns_exists "$ns" || continue
		pids=$(ip netns pids "$ns" 2>/dev/null)
		if [ -n "$pids" ]; then
			kill -TERM $pids 2>/dev/null
			for _ in $(seq 20); do
				pids=$(ip netns pids "$ns" 2>/dev/null)
				[ -z "$pids" ] && break
				sleep 0.1
			done
			[ -n "$pids" ] && kill -KILL $pids 2>/dev/null && sleep 0.2
		fi
		ip netns del "$ns" 2>/dev/null
		if ns_exists "$ns"; then echo "testnet: could not delete netns $ns" >&2; left=1; fi
	done
	rm -rf "$sd"
	return $left
}

# ---- up ----
cmd_up() {
	local name=$1; shift
	local rate="" burst="" net="" hz bps
	check_name "$name"
	while [ $# -gt 0 ]; do
		case $1 in
		--rate) rate=${2:?--rate needs a value}; shift 2 ;;
		--burst) burst=${2:?--burst needs a value}; shift 2 ;;
		--net) net=${2:?--net needs a value}; shift 2 ;;
		--delay-ms) echo "testnet: note: --delay-ms on up starts nothing; use 'testnet.sh proxy $name LISTEN_PORT TARGET_PORT ${2:-D}'" >&2; shift 2 ;;
		*) die "up: unknown option '$1'" ;;
		esac
	done
	[ "$(id -u)" = 0 ] || die "needs root (ip netns)"
	if [ -n "$net" ]; then
		case $net in *[!0-9]*|"") die "--net must be 1..254" ;; esac
		[ "$net" -ge 1 ] && [ "$net" -le 254 ] || die "--net must be 1..254"
	else
		net=$(derive_net "$name")
	fi
	if [ -n "$rate" ] && [ -z "$burst" ]; then
		bps=$(rate_bytes "$rate")
		[ -n "$bps" ] || die "cannot parse --rate '$rate'; give --burst BYTES too"
		hz=$(kernel_hz)
		burst=$(( (bps + hz - 1) / hz ))
		[ "$burst" -ge 131072 ] || burst=131072
	fi
	if [ -n "$rate" ]; then
		case $burst in *[!0-9]*|"") ;; *)
			[ "$burst" -ge 65536 ] || echo "testnet: warning: --burst $burst < 64 KiB: tbf will split or drop large (GSO) packets" >&2 ;;
		esac
	fi
	if ns_exists "$name-a" || ns_exists "$name-b" || [ -d "$(statedir "$name")" ]; then
		echo "testnet: net '$name' exists already; recreating it" >&2
		cmd_down "$name" || die "could not remove the old net '$name'"
	fi
	mkdir -p "$(statedir "$name")" && echo "$net" >"$(statedir "$name")/net" ||
		die "cannot write $(statedir "$name")"
	if ! (
		set -e
		ip netns add "$name-a"
		ip netns add "$name-b"
		ip link add veth-a netns "$name-a" type veth peer name veth-b netns "$name-b"
		ip -n "$name-a" link set lo up
		ip -n "$name-b" link set lo up
		ip -n "$name-a" addr add "10.231.$net.1/24" dev veth-a
		ip -n "$name-b" addr add "10.231.$net.2/24" dev veth-b
		# no IPv6 chatter (DAD, router solicitations) on the test link
		ip netns exec "$name-a" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/veth-a/disable_ipv6' 2>/dev/null || true
		ip netns exec "$name-b" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/veth-b/disable_ipv6' 2>/dev/null || true
		if [ -n "$rate" ]; then
			# queue: 5 ms worth of rate on top of the burst
			for e in a b; do
				tc -n "$name-$e" qdisc add dev "veth-$e" root tbf rate "$rate" burst "$burst" latency 5ms
			done
			echo "$rate burst $burst" >"$(statedir "$name")/rate"
		fi
		ip -n "$name-a" link set veth-a up
		ip -n "$name-b" link set veth-b up
	); then
		cmd_down "$name"
		die "up $name failed"
	fi
	# wait for the link to come up (carrier) so the first connect does not race
	for _ in $(seq 50); do
		ip -n "$name-a" link show veth-a 2>/dev/null | grep -q 'state UP' && break
		sleep 0.02
	done
	echo "testnet: $name up: $name-a 10.231.$net.1 <-> $name-b 10.231.$net.2${rate:+, tbf $rate burst $burst}" >&2
}

# ---- proxy ----
cmd_proxy() {
	local name=$1 lport=${2:-} tport=${3:-} delay=${4:-}
	[ $# -ge 4 ] || usage
	shift 4
	need_up "$name"
	case $lport$tport in *[!0-9]*|"") die "ports must be numbers" ;; esac
	local net sd pidf logf pid
	net=$(net_of "$name")
	sd=$(statedir "$name")
	pidf=$sd/proxy-$lport.pid
	logf=$sd/proxy-$lport.log
	ensure_proxy_bin
	mkdir -p "$sd"
	stop_proxy_file "$pidf"
	: >"$logf"
	ip netns exec "$name-a" "$PROXY_BIN" --listen "10.231.$net.1:$lport" \
		--to "10.231.$net.2:$tport" --delay-ms "$delay" "$@" </dev/null >>"$logf" 2>&1 &
	pid=$!
	echo "$pid" >"$pidf"
	for _ in $(seq 100); do
		grep -q 'listening on' "$logf" 2>/dev/null && return 0
		if ! [ -d "/proc/$pid" ]; then
			cat "$logf" >&2
			rm -f "$pidf"
			die "proxy on $name-a port $lport failed to start"
		fi
		sleep 0.05
	done
	cat "$logf" >&2
	die "proxy on $name-a port $lport did not start listening within 5 s"
}

cmd_unproxy() {
	local name=$1 lport=${2:-}
	[ -n "$lport" ] || usage
	stop_proxy_file "$(statedir "$name")/proxy-$lport.pid"
}

# ---- selftest ----
SELFTEST_PY='
import socket, sys, time
def server(host, port):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port)); ls.listen(16)
    print("ready", flush=True)
    buf = bytearray(1 << 20)
    while True:
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mode = c.recv(1)
        if mode == b"T":
            total = 0
            while True:
                n = c.recv_into(buf)
                if not n: break
                total += n
            c.sendall(b"%d\n" % total)
        elif mode == b"P":
            while True:
                m = c.recv(64)
                if not m: break
                while len(m) < 64:
                    x = c.recv(64 - len(m))
                    if not x: break
                    m += x
                c.sendall(m)
        c.close()
def connect(host, port):
    for i in range(100):
        try:
            s = socket.create_connection((host, port)); break
        except OSError:
            time.sleep(0.05)
    else:
        s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def tput(host, port, secs):
    s = connect(host, port); s.sendall(b"T")
    buf = memoryview(bytearray(1 << 20)); sent = 0
    t0 = time.monotonic(); end = t0 + secs
    while time.monotonic() < end:
        sent += s.send(buf)
    s.shutdown(socket.SHUT_WR)
    got = int(s.makefile().readline())
    dt = time.monotonic() - t0
    assert got == sent, (got, sent)
    print("%.2f Gbit/s (%d MB in %.2f s)" % (got * 8 / dt / 1e9, got // 1000000, dt))
def rtt(host, port, secs):
    s = connect(host, port); s.sendall(b"P")
    msg = b"x" * 64; r = []
    t_end = time.monotonic() + secs
    while len(r) < 20 or (time.monotonic() < t_end and len(r) < 20000):
        t = time.monotonic(); s.sendall(msg); got = 0
        while got < 64:
            x = s.recv(64 - got)
            if not x: raise SystemExit("connection closed")
            got += len(x)
        r.append(time.monotonic() - t)
    r.sort()
    us = lambda v: v * 1e6
    print("min %.0f us, median %.0f us, p99 %.0f us (%d round trips)" % (us(r[0]), us(r[len(r)//2]), us(r[int(len(r)*0.99)]), len(r)))
m = sys.argv[1]
if m == "server": server(sys.argv[2], int(sys.argv[3]))
elif m == "tput": tput(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
else: rtt(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
'

# selftest state is global: the EXIT trap runs after cmd_selftest returned
ST_NAME="" ST_SD="" ST_SRV_PID="" ST_PORTS="" ST_CREATED=0
selftest_cleanup() {
	local p
	[ -n "$ST_SRV_PID" ] && kill "$ST_SRV_PID" 2>/dev/null && wait "$ST_SRV_PID" 2>/dev/null
	for p in $ST_PORTS; do stop_proxy_file "$ST_SD/proxy-$p.pid"; done
	rm -f "$ST_SD/selftest.py" "$ST_SD/selftest-server.log"
	[ "$ST_CREATED" = 1 ] && cmd_down "$ST_NAME"
	return 0
}

cmd_selftest() {
	local name=$1; shift
	local secs=2 delays="0.05 0.5 5" upargs=()
	while [ $# -gt 0 ]; do
		case $1 in
		--seconds) secs=${2:?--seconds needs a value}; shift 2 ;;
		--delays) delays=${2?--delays needs a value}; shift 2 ;;
		*) upargs+=("$1"); shift ;;
		esac
	done
	command -v python3 >/dev/null || die "selftest needs python3"
	local py net ip_a ip_b port=47100 lport=47101 d rc=0
	ST_NAME=$name
	trap selftest_cleanup EXIT
	trap 'exit 130' INT TERM
	if ! ns_exists "$name-a"; then
		ST_CREATED=1
		cmd_up "$name" "${upargs[@]}" || exit 1
	elif [ ${#upargs[@]} -gt 0 ]; then
		echo "testnet: net '$name' is up already; ignoring ${upargs[*]}" >&2
	fi
	need_up "$name"
	ST_SD=$(statedir "$name")
	py=$ST_SD/selftest.py
	printf '%s' "$SELFTEST_PY" >"$py"
	net=$(net_of "$name"); ip_a=10.231.$net.1; ip_b=10.231.$net.2
	ip netns exec "$name-b" python3 "$py" server "$ip_b" $port >"$ST_SD/selftest-server.log" 2>&1 &
	ST_SRV_PID=$!
	echo "selftest $name: $ip_a ($name-a) -> $ip_b ($name-b)$( [ -f "$ST_SD/rate" ] && echo ", tbf $(cat "$ST_SD/rate")")"
	printf '  direct          throughput: '; ip netns exec "$name-a" python3 "$py" tput "$ip_b" $port "$secs" || rc=1
	printf '  direct          round trip: '; ip netns exec "$name-a" python3 "$py" rtt "$ip_b" $port 1 || rc=1
	for d in $delays; do
		ST_PORTS="$ST_PORTS $lport"
		cmd_proxy "$name" $lport $port "$d"
		printf '  proxy %-6s ms  throughput: ' "$d"; ip netns exec "$name-a" python3 "$py" tput "$ip_a" $lport "$secs" || rc=1
		printf '  proxy %-6s ms  round trip: ' "$d"; ip netns exec "$name-a" python3 "$py" rtt "$ip_a" $lport 1 || rc=1
		[ $rc = 0 ] || { echo "--- proxy log:"; cat "$ST_SD/proxy-$lport.log"; echo "--- server log:"; cat "$ST_SD/selftest-server.log"; } >&2
		stop_proxy_file "$ST_SD/proxy-$lport.pid"
		lport=$((lport + 1))
	done
	[ $rc = 0 ] || echo "selftest $name: FAILED" >&2
	return $rc
}

# ---- main ----
[ $# -ge 2 ] || usage
cmd=$1 name=$2
shift 2
check_name "$name"
case $cmd in
up) cmd_up "$name" "$@" ;;
down) cmd_down "$name" ;;
proxy) cmd_proxy "$name" "$@" ;;
unproxy) cmd_unproxy "$name" "$@" ;;
exec)
	[ $# -ge 2 ] || usage
	case $1 in a|b) ;; *) die "exec: side must be a or b" ;; esac
	need_up "$name"
	side=$1; shift
	exec ip netns exec "$name-$side" "$@"
	;;
addr)
	case ${1:-} in a) echo "10.231.$(net_of "$name").1" ;; b) echo "10.231.$(net_of "$name").2" ;; *) die "addr: side must be a or b" ;; esac
	;;
linkdown|linkup)
	need_up "$name"
	st=${cmd#link}
	ip -n "$name-a" link set veth-a "$st" && ip -n "$name-b" link set veth-b "$st" || die "$cmd failed"
	;;
selftest) cmd_selftest "$name" "$@" ;;
*) usage ;;
esac
