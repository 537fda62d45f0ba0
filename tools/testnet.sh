#!/usr/bin/env bash
# testnet.sh — a private two-namespace test network for migration tests.
#
#   tools/testnet.sh up NAME [--rate RATE] [--burst BYTES] [--net X]
#                    [--delay-ms D [--queue-ms Q]]
#       Create network namespaces NAME-a and NAME-b joined by a link (in
#       NAME-a 10.231.X.1/24, in NAME-b 10.231.X.2/24) and bring up lo in
#       both. X is given by --net (1..254) or derived from NAME:
#       X = (cksum of NAME) % 254 + 1 — deterministic; two nets that happen
#       to share X do not interfere (every net lives in its own namespaces).
#       If NAME-a/NAME-b already exist (leftovers of a killed test) they are
#       torn down first.
#       Without --delay-ms the link is a veth pair (veth-a, veth-b). --rate
#       RATE caps each direction with `tc tbf` on both veth ends (RATE as tc
#       spells it: 1gbit, 500mbit, 10gbit, 125mbps...). The burst defaults to
#       rate/HZ bytes, at least 128 KiB (HZ from the kernel config, 100 if
#       unknown; HZ=250 here: 1gbit -> 500000 B, 10gbit -> 5000000 B);
#       measured one TCP stream: 1gbit -> 0.96 Gbit/s, 10gbit -> 9.5-9.6
#       Gbit/s (uncapped 13-19). tbf latency 5 ms (queue = 5 ms of rate +
#       burst). --burst BYTES overrides.
#       With --delay-ms D the link is a WAN: two TUN devices (wan-a, wan-b)
#       joined by tools/wanline, a packet-level delay line that holds every
#       packet D ms (fractional ok) each way, so every connection and ping
#       between the namespaces sees an RTT of 2*D plus ~0.1 ms, end to end
#       (TCP's window, ACK clock and losses are real; nothing acknowledges
#       on the path's behalf). --rate then caps each direction inside the
#       line, where a WAN's bottleneck is: a remote queue of Q ms (--queue-ms,
#       default max(2*D, 10): one bandwidth-delay product) with tail drop,
#       not a local qdisc. The line runs outside the namespaces; pid and
#       log in /tmp/hm-testnet-NAME/wanline.{pid,log}. netem would be the
#       usual tool; this kernel does not have it (PLATFORM.md).
#       Long fat pipes need socket buffers of a few bandwidth-delay
#       products: 1 Gbit/s at 150 ms RTT is 18.75 MB in flight, more than the
#       default net.ipv4.tcp_wmem maximum (4 MiB) lets one sender keep.
#   tools/testnet.sh stats NAME
#       The WAN line's counters (packets, wire bytes, drops, longest queue
#       wait), one line per direction.
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
#       Set both ends (veth or wan) down / up (a cut link: sends fail with
#       "network unreachable", TCP connections retransmit and survive if the
#       link comes back before they time out). The tbf qdisc is kept.
#   tools/testnet.sh selftest NAME [--seconds S] [--delays "0.05 0.5 5"] [up options]
#       Measure TCP throughput a->b (S seconds, default 2) and the round trip
#       of 64-byte ping-pong messages, directly and through a delayproxy for
#       each delay. Uses ports 47100-47199. If NAME is not up, brings it up
#       with the given up options and takes it down again at the end.
#   tools/testnet.sh selftest NAME --wan "10 50 75" [--seconds S] [--rate RATE] [up options]
#       For each one-way delay D (ms): bring NAME up as a WAN with that delay,
#       then measure ICMP echo and 64-byte TCP ping-pong round trips and one
#       TCP stream a->b of S seconds (default 8) whose socket buffers are set
#       to 4 bandwidth-delay products (SO_SNDBUF/SO_RCVBUFFORCE, as root).
#       The stream's rate is shown overall and for its second half ("once the
#       window has grown"). Checks: the smallest round trip is at least 2*D,
#       and with --rate the second half reaches 90 % of the cap (in goodput:
#       TCP payload, against the cap in wire bytes). Exit 1 if a check fails.
#       Takes NAME down at the end.
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

NETCHECK=$ROOT/tools/netcheck.py # the self-test's probes (python3)

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

# ensure_bin NAME: build $OUT/tools/NAME from tools/NAME.c and its parts
# tools/NAME_*.c (headers tools/NAME*.h), when missing or older than any of them
ensure_bin() {
	local bin=$OUT/tools/$1 srcs="" stale=0 f
	for f in "$ROOT/tools/$1.c" "$ROOT"/tools/"$1"_*.c "$ROOT"/tools/"$1"*.h; do
		[ -e "$f" ] || continue
		case $f in *.c) srcs="$srcs $f" ;; esac
		[ "$f" -nt "$bin" ] && stale=1
	done
	if [ -x "$bin" ] && [ $stale = 0 ]; then return 0; fi
	mkdir -p "$OUT/tools" || die "cannot create $OUT/tools"
	local tmp="$bin.tmp.$$"
	# in a subshell: a signal to this script must not leave the temp file
	# shellcheck disable=SC2086 # $srcs: paths without spaces, one word each
	( trap 'rm -f "$tmp"' EXIT
	  ${CC:-cc} -O2 -Wall -Wextra -Werror -o "$tmp" $srcs -lpthread && mv -f "$tmp" "$bin"
	) || die "building $bin failed"
}

# link_ifs NAME: the two link devices of a net that is up ("veth-a veth-b" or "wan-a wan-b")
link_ifs() {
	local f; f=$(statedir "$1")/ifs
	if [ -s "$f" ]; then cat "$f"; else echo "veth-a veth-b"; fi
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
	if [ -f "$sd/wanline.pid" ]; then
		stop_pid "$(cat "$sd/wanline.pid" 2>/dev/null)" wanline
		rm -f "$sd/wanline.pid"
	fi
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
# pick_net NAME [X]: X checked, or derived from NAME
pick_net() {
	local net=$2
	if [ -n "$net" ]; then
		case $net in *[!0-9]*) die "--net must be 1..254" ;; esac
		[ "$net" -ge 1 ] && [ "$net" -le 254 ] || die "--net must be 1..254"
		echo "$net"
	else
		derive_net "$1"
	fi
}

# fresh_state NAME X: remove leftovers of NAME, record X in a new state dir
fresh_state() {
	if ns_exists "$1-a" || ns_exists "$1-b" || [ -d "$(statedir "$1")" ]; then
		echo "testnet: net '$1' exists already; recreating it" >&2
		cmd_down "$1" || die "could not remove the old net '$1'"
	fi
	mkdir -p "$(statedir "$1")" && echo "$2" >"$(statedir "$1")/net" ||
		die "cannot write $(statedir "$1")"
}

# wan_up NAME X RATE DELAY QUEUE: the TUN pair and the delay line between them
wan_up() {
	local name=$1 net=$2 rate=$3 delay=$4 queue=$5 sd bits="" pid
	case $delay in ''|*[!0-9.]*|*.*.*) die "--delay-ms must be a number of ms" ;; esac
	case $queue in *[!0-9.]*|*.*.*) die "--queue-ms must be a number of ms" ;; esac
	if [ -n "$rate" ]; then
		bits=$(rate_bytes "$rate")
		[ -n "$bits" ] || die "cannot parse --rate '$rate'"
		bits=$((bits * 8))
	fi
	net=$(pick_net "$name" "$net") || exit 1
	ensure_bin wanline
	fresh_state "$name" "$net"
	sd=$(statedir "$name")
	echo "wan-a wan-b" >"$sd/ifs"
	if ! (
		set -e
		for e in a b; do
			ip netns add "$name-$e"
			ip -n "$name-$e" link set lo up
			ip -n "$name-$e" tuntap add dev "wan-$e" mode tun vnet_hdr
			# room for the line's scheduling hiccups: the sender's TSQ keeps it small
			ip -n "$name-$e" link set "wan-$e" txqueuelen 10000
			ip netns exec "$name-$e" sh -c "echo 1 >/proc/sys/net/ipv6/conf/wan-$e/disable_ipv6" 2>/dev/null || true
		done
		ip -n "$name-a" addr add "10.231.$net.1/24" dev wan-a
		ip -n "$name-b" addr add "10.231.$net.2/24" dev wan-b
	); then
		cmd_down "$name"
		die "up $name failed"
	fi
	"$OUT/tools/wanline" --a "/var/run/netns/$name-a:wan-a" --b "/var/run/netns/$name-b:wan-b" \
		--delay-ms "$delay" ${bits:+--rate "$bits"} ${queue:+--queue-ms "$queue"} \
		</dev/null >>"$sd/wanline.log" 2>&1 &
	pid=$!
	echo "$pid" >"$sd/wanline.pid"
	for _ in $(seq 100); do
		grep -q 'wanline ready' "$sd/wanline.log" 2>/dev/null && break
		if ! [ -d "/proc/$pid" ]; then
			cat "$sd/wanline.log" >&2
			cmd_down "$name"
			die "the WAN line of $name failed to start"
		fi
		sleep 0.05
	done
	grep -q 'wanline ready' "$sd/wanline.log" || { cmd_down "$name"; die "the WAN line of $name did not start within 5 s"; }
	ip -n "$name-a" link set wan-a up && ip -n "$name-b" link set wan-b up || { cmd_down "$name"; die "up $name failed"; }
	[ -z "$rate" ] || echo "$rate" >"$sd/rate"
	echo "$delay" >"$sd/delay"
	echo "testnet: $name up: $name-a 10.231.$net.1 <-> $name-b 10.231.$net.2, WAN $delay ms each way${rate:+, $rate}" >&2
}

cmd_stats() {
	local sd pid n
	need_up "$1"
	sd=$(statedir "$1")
	pid=$(cat "$sd/wanline.pid" 2>/dev/null)
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || die "net '$1' has no WAN line running"
	n=$(wc -l <"$sd/wanline.log")
	kill -USR1 "$pid" || die "cannot signal the WAN line"
	for _ in $(seq 50); do
		[ "$(wc -l <"$sd/wanline.log")" -ge $((n + 2)) ] && break
		sleep 0.02
	done
	tail -n +$((n + 1)) "$sd/wanline.log" | sed 's/^wanline //'
}

cmd_up() {
	local name=$1; shift
	local rate="" burst="" net="" delay="" queue="" hz bps
	check_name "$name"
	while [ $# -gt 0 ]; do
		case $1 in
		--rate) rate=${2:?--rate needs a value}; shift 2 ;;
		--burst) burst=${2:?--burst needs a value}; shift 2 ;;
		--net) net=${2:?--net needs a value}; shift 2 ;;
		--delay-ms) delay=${2:?--delay-ms needs a value}; shift 2 ;;
		--queue-ms) queue=${2:?--queue-ms needs a value}; shift 2 ;;
		*) die "up: unknown option '$1'" ;;
		esac
	done
	[ "$(id -u)" = 0 ] || die "needs root (ip netns)"
	if [ -n "$delay" ]; then
		wan_up "$name" "$net" "$rate" "$delay" "$queue"
		return
	fi
	[ -z "$queue" ] || die "--queue-ms needs --delay-ms (the WAN line)"
	net=$(pick_net "$name" "$net") || exit 1
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
	fresh_state "$name" "$net"
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
	ensure_bin delayproxy
	mkdir -p "$sd"
	stop_proxy_file "$pidf"
	: >"$logf"
	ip netns exec "$name-a" "$OUT/tools/delayproxy" --listen "10.231.$net.1:$lport" \
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

# selftest state is global: the EXIT trap runs after cmd_selftest returned
ST_NAME="" ST_SD="" ST_SRV_PID="" ST_PORTS="" ST_CREATED=0
selftest_cleanup() {
	local p
	[ -n "$ST_SRV_PID" ] && kill "$ST_SRV_PID" 2>/dev/null && wait "$ST_SRV_PID" 2>/dev/null
	for p in $ST_PORTS; do stop_proxy_file "$ST_SD/proxy-$p.pid"; done
	rm -f "$ST_SD/selftest-server.log"
	[ "$ST_CREATED" = 1 ] && cmd_down "$ST_NAME"
	return 0
}

# selftest_wan NAME "D1 D2..." SECONDS [up options]: see the header
selftest_wan() {
	local name=$1 delays=$2 secs=$3 rate="" bits=0 d rc=0 r buf want min
	shift 3
	local i=1
	while [ $i -le $# ]; do
		[ "${!i}" = --rate ] && { i=$((i + 1)); rate=${!i}; }
		i=$((i + 1))
	done
	if [ -n "$rate" ]; then
		bits=$(rate_bytes "$rate")
		[ -n "$bits" ] || die "cannot parse --rate '$rate'"
		bits=$((bits * 8))
	fi
	ST_CREATED=1
	ST_SD=$(statedir "$name")
	for d in $delays; do
		cmd_up "$name" --delay-ms "$d" "$@" 2>/dev/null || { cmd_up "$name" --delay-ms "$d" "$@"; exit 1; }
		net=$(net_of "$name"); ip_a=10.231.$net.1; ip_b=10.231.$net.2
		min=$(awk -v d="$d" 'BEGIN { print 2 * d }')
		# 4 bandwidth-delay products of socket buffer, at least 4 MiB (64 MiB without a cap)
		buf=$(awk -v b="$bits" -v d="$d" 'BEGIN { v = b ? 4 * b / 8 * 2 * d / 1000 : 67108864; if (v < 4194304) v = 4194304; printf "%.0f", v }')
		want=$(awk -v b="$bits" 'BEGIN { printf "%.0f", 0.9 * b }')
		ip netns exec "$name-b" python3 "$NETCHECK" server "$ip_b" 47100 "$buf" >"$ST_SD/selftest-server.log" 2>&1 &
		ST_SRV_PID=$!
		echo "selftest $name: WAN $d ms each way${rate:+, $rate}, $ip_a ($name-a) -> $ip_b ($name-b), socket buffers $((buf >> 20)) MiB"
		printf '  ping (ICMP)        : '; ip netns exec "$name-a" python3 "$NETCHECK" icmp "$ip_b" 5 "$min" || rc=1
		printf '  TCP ping-pong      : '; ip netns exec "$name-a" python3 "$NETCHECK" rtt "$ip_b" 47100 1 "$min" || rc=1
		printf '  TCP stream %4s s  : ' "$secs"; ip netns exec "$name-a" python3 "$NETCHECK" tput "$ip_b" 47100 "$secs" "$buf" "$want" || rc=1
		r=$(cmd_stats "$name" | sed 's/^/  line /')
		echo "$r"
		kill "$ST_SRV_PID" 2>/dev/null && wait "$ST_SRV_PID" 2>/dev/null
		ST_SRV_PID=""
	done
	[ $rc = 0 ] && echo "selftest $name: ok" || echo "selftest $name: FAILED" >&2
	return $rc
}

cmd_selftest() {
	local name=$1; shift
	local secs="" delays="0.05 0.5 5" wan="" upargs=()
	while [ $# -gt 0 ]; do
		case $1 in
		--seconds) secs=${2:?--seconds needs a value}; shift 2 ;;
		--delays) delays=${2?--delays needs a value}; shift 2 ;;
		--wan) wan=${2:?--wan needs a list of one-way delays in ms}; shift 2 ;;
		*) upargs+=("$1"); shift ;;
		esac
	done
	command -v python3 >/dev/null || die "selftest needs python3"
	local py net ip_a ip_b port=47100 lport=47101 d rc=0
	ST_NAME=$name
	trap selftest_cleanup EXIT
	trap 'exit 130' INT TERM
	if [ -n "$wan" ]; then
		selftest_wan "$name" "$wan" "${secs:-8}" "${upargs[@]}"
		return
	fi
	secs=${secs:-2}
	if ! ns_exists "$name-a"; then
		ST_CREATED=1
		cmd_up "$name" "${upargs[@]}" || exit 1
	elif [ ${#upargs[@]} -gt 0 ]; then
		echo "testnet: net '$name' is up already; ignoring ${upargs[*]}" >&2
	fi
	need_up "$name"
	ST_SD=$(statedir "$name")
	py=$NETCHECK
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
	set -- $(link_ifs "$name")
	ip -n "$name-a" link set "$1" "$st" && ip -n "$name-b" link set "$2" "$st" || die "$cmd failed"
	;;
selftest) cmd_selftest "$name" "$@" ;;
stats) cmd_stats "$name" ;;
*) usage ;;
esac
