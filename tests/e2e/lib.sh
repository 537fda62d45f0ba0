# Shared by the end-to-end scripts: a scratch directory and process
# clean-up that run even when a check fails, and pass/fail counting.
# Sourced; sets HM to the binary under test.
O=${O:-build}
HM=${HM:-$(pwd)/$O/hybridmig}
T=$(mktemp -d /tmp/hm-e2e.XXXXXX)
PIDS=""
passed=0
failed=0

cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "$KEEP_T" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM

# A character device that opens read-write: a stray regular file named
# /dev/kvm (seen when a package's install script touched it) is no KVM.
require_kvm() {
	if [ ! -c /dev/kvm ] || ! (exec 3<>/dev/kvm) 2>/dev/null; then
		case ",${HM_REQUIRE:-}," in
		*,kvm,*) echo "FAIL: /dev/kvm is required (HM_REQUIRE) but not usable"; exit 1 ;;
		esac
		echo "skip: /dev/kvm is not usable"
		exit 77
	fi
}

# userfaultfd (post-copy): skip without it, unless HM_REQUIRE names uffd
require_uffd() {
	case ",${HM_REQUIRE:-}," in *,uffd,*) return 0 ;; esac
	python3 -c "import ctypes,sys; sys.exit(0 if ctypes.CDLL(None).syscall(323, 0x80800) >= 0 else 77)" ||
		{ echo "skip: no userfaultfd"; exit 77; }
}

ok() {
	passed=$((passed + 1))
	echo "ok: $*"
}

bad() {
	failed=$((failed + 1))
	echo "FAIL: $*"
}

# check DESCRIPTION COMMAND...: the command must succeed
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}

# not COMMAND...: succeeds when the command fails (for check)
not() {
	! "$@"
}

# start_bg NAME ARGS...: run hybridmig in the background, output in $T/NAME.{out,err};
# an incoming is waited for until it listens
start_bg() {
	_bg=$1
	shift
	"$HM" "$@" >"$T/$_bg.out" 2>"$T/$_bg.err" &
	PIDS="$PIDS $!"
	eval "PID_$_bg=$!"
	[ "$1" = incoming ] && wait_listen "$T/$_bg.err"
	return 0
}

# wait_listen FILE: until the incoming whose stderr is FILE says it listens (at most 10 s)
wait_listen() {
	wait_line "waiting for a VM" "$1"
}

# wait_line PATTERN FILE: until FILE has a line matching PATTERN (at most 10 s)
wait_line() {
	_i=0
	while [ $_i -lt 100 ]; do
		grep -q "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# job_until SOCK KEY VALUE: until `job` shows KEY = VALUE (at most 10 s)
job_until() {
	_i=0
	while [ $_i -lt 100 ]; do
		[ "$("$HM" job --control "$1" --json 2>/dev/null | json_get "$2")" = "$3" ] && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# wait_exit PID SECONDS: wait for a process to end, at most SECONDS; then kill it.
# Returns its exit status, or 124 if it had to be killed.
wait_exit() {
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt $(($2 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -9 "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		return 124
	fi
	wait "$1"
}

# wait_sock PATH: until a control socket answers status (at most 10 s)
wait_sock() {
	i=0
	while [ $i -lt 100 ]; do
		"$HM" status --control "$1" --json >/dev/null 2>&1 && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# json_get KEY: the value of a flat member from one JSON object on stdin
json_get() {
	python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("null" if v is None else (str(v).lower() if isinstance(v,bool) else v))' "$1"
}

# none_running: no hybridmig this script started is still alive
none_running() {
	for p in $PIDS; do kill -0 "$p" 2>/dev/null && return 1; done
	return 0
}

# net_up NAME [tbf args]: a two-namespace network (tools/testnet.sh), removed on exit;
# sets A and B to the two addresses
net_up() {
	NET=$1
	shift
	trap 'bash tools/testnet.sh down $NET >/dev/null 2>&1; cleanup' EXIT INT TERM
	if ! bash tools/testnet.sh up "$NET" "$@" >"$T/net.log" 2>&1; then
		cat "$T/net.log"
		echo "FAIL: cannot build the test network (network namespaces)"
		exit 1
	fi
	A=$(bash tools/testnet.sh addr "$NET" a)
	B=$(bash tools/testnet.sh addr "$NET" b)
}

# bg_in a|b NAME ARGS...: hybridmig inside a namespace, in the background
bg_in() {
	_side=$1 _bg=$2
	shift 2
	ip netns exec "$NET-$_side" "$HM" "$@" >"$T/$_bg.out" 2>"$T/$_bg.err" &
	PIDS="$PIDS $!"
	eval "PID_$_bg=$!"
	[ "$1" = incoming ] && wait_listen "$T/$_bg.err"
	return 0
}

# TLS credentials for this script (tools/mkcerts.sh): a CA, a source and a
# destination certificate; TLS_SRC / TLS_DST are the flags each side takes.
# Every migration in the tests runs over TLS unless a test is about plain TCP.
make_pki() {
	if ! sh tools/mkcerts.sh --loopback "$T/pki" src dst >"$T/pki.log" 2>&1; then
		cat "$T/pki.log"
		echo "FAIL: cannot make test certificates (tools/mkcerts.sh)"
		exit 1
	fi
	TLS_SRC="--tls-dir $T/pki/src"
	TLS_DST="--tls-dir $T/pki/dst"
}
make_pki

# After net_up and with PORT set (each move takes the next port):
# move MODE NAME MIGRATE_ARGS -- RUN_ARGS...: a VM started with RUN_ARGS in
# $NET-a, an incoming in $NET-b, migrate --mode MODE --json MIGRATE_ARGS;
# the last JSON line in $T/NAME.final; returns migrate's exit status
move() {
	mode=$1 n=$2
	shift 2
	margs=""
	while [ "$1" != "--" ]; do margs="$margs $1"; shift; done
	shift
	PORT=$((PORT + 1))
	bg_in b "${n}_d" incoming $TLS_DST --listen "$B:$PORT" --control "$T/$n.d.sock"
	bg_in a "${n}_s" run --control "$T/$n.s.sock" "$@"
	wait_sock "$T/$n.s.sock" || { bad "$n: source did not come up"; return 1; }
	sleep 0.7
	ip netns exec "$NET-a" "$HM" migrate $TLS_SRC --mode "$mode" --control "$T/$n.s.sock" \
		--to "$B:$PORT" --json $margs >"$T/$n.mig" 2>"$T/$n.mig.err"
	rc=$?
	tail -1 "$T/$n.mig" >"$T/$n.final"
	return $rc
}

# landed NAME [grows]: destination verifies ok (and keeps working); both processes end cleanly
landed() {
	n=$1
	check "$n: report done" [ "$(json_get phase <"$T/$n.final")" = done ]
	wait_sock "$T/$n.d.sock" || bad "$n: destination control socket"
	u1=$("$HM" status --control "$T/$n.d.sock" --json | json_get work_units)
	check "$n: verify ok on the destination" [ "$("$HM" verify --control "$T/$n.d.sock" --json | json_get verify)" = ok ]
	if [ "$2" = grows ]; then
		sleep 0.3
		u2=$("$HM" status --control "$T/$n.d.sock" --json | json_get work_units)
		check "$n: guest still progressing ($u1 -> $u2)" [ "$u2" -gt "$u1" ]
	fi
	eval "ps=\$PID_${n}_s"
	wait "$ps"
	check "$n: source exits 0 once every page is there" [ $? -eq 0 ]
	"$HM" stop --control "$T/$n.d.sock" >/dev/null
	eval "pd=\$PID_${n}_d"
	wait "$pd"
	check "$n: destination exits 0" [ $? -eq 0 ]
}

# migrate_pps: how many pages/s a pre-copy moves on this machine, measured
# once per boot and binary (a 32 MiB working set, on port PORT + 900) and
# cached beside the binary; returns 1 when it cannot be measured.
migrate_pps() {
	_c=$(dirname "$HM")/.migrate-pages-per-s
	_k="$(cat /proc/sys/kernel/random/boot_id) $(stat -c %Y "$HM")"
	if [ "$(sed -n 1p "$_c" 2>/dev/null)" != "$_k" ]; then
		_p=$((PORT + 900))
		start_bg cal_d incoming $TLS_DST --listen 127.0.0.1:$_p --control "$T/cal.d.sock"
		start_bg cal_s run --mem 128M --guest dirtier:wss=32M,fill=1 --control "$T/cal.s.sock"
		wait_sock "$T/cal.s.sock"
		sleep 0.5
		"$HM" migrate --mode precopy $TLS_SRC --control "$T/cal.s.sock" --to 127.0.0.1:$_p \
			--json >"$T/cal.mig" 2>"$T/cal.err"
		_rc=$?
		"$HM" stop --control "$T/cal.d.sock" >/dev/null 2>&1
		wait_exit "$PID_cal_d" 10 >/dev/null
		wait_exit "$PID_cal_s" 10 >/dev/null
		_pps=$(tail -1 "$T/cal.mig" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(int(r["bandwidth_mbps"] * 1e6 * r["compression_ratio"] / 8 / 4096))' 2>/dev/null)
		if [ $_rc -ne 0 ] || [ -z "$_pps" ]; then
			cat "$T/cal.err" >&2
			echo "FAIL: cannot measure how fast this machine migrates (exit $_rc)" >&2
			return 1
		fi
		printf '%s\n%s\n' "$_k" "$_pps" >"$_c"
		echo "this machine migrates $_pps pages/s (cached in $_c)" >&2
	fi
	sed -n 2p "$_c"
}

# writer_rate MAX [SHARE] and writer_io MAX [SHARE]: a dirtier's rate=
# (pages/s) and io= (MB/s of DMA writes) for a test that needs pre-copy to
# outrun the guest. Together the writers get a quarter of what this machine
# migrates (migrate_pps), split between SHARE of them (default 1; a dirtier
# with io= is 2), so each pre-copy round leaves about a quarter of the one
# before. On hardware KVM that is far above MAX, so MAX it is; under an
# emulated CPU (tools/nested-kvm.sh, ~1600 pages/s) a 20000 pages/s writer
# would never converge. io= is at least 1 (MB/s): its 256-page ring
# is dirtied about 250 pages/s. Call them as R=$(writer_rate N) || exit 1.
writer_rate() {
	_pps=$(migrate_pps) || return 1
	python3 -c 'import sys; m, p, s = map(int, sys.argv[1:]); print(max(50, min(m, p // 4 // s)))' \
		"$1" "$_pps" "${2:-1}"
}
writer_io() {
	_pps=$(migrate_pps) || return 1
	python3 -c 'import sys; m, p, s = map(int, sys.argv[1:]); print(max(1, min(m, p * 4096 // 4 // s // 1000000)))' \
		"$1" "$_pps" "${2:-1}"
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
