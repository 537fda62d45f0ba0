#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-mig: live-migration figures across the two-namespace test network
# (make bench-mig).
#
# Matrix: link {tc tbf 1 Gbit/s, uncapped veth} x guest RAM {1 GiB, 4 GiB}
# x workload {idle, dirtier at 25 % and 75 % of the link}. The dirtier writes
# whole 4 KiB pages sequentially over a working set of 512 MiB (1 GiB guest)
# or 1 GiB (4 GiB guest) at
#     rate = pct/100 * link_bits/s / 8 / 4096 pages/s,
# where link_bits/s is 1e9 for the capped link and 10e9 for the uncapped one
# (veth does ~13 Gbit/s with one TCP stream here; 10 Gbit/s is the nominal
# reference), i.e. 7629 / 22888 pages/s capped, 76294 / 228882 uncapped.
#
# Each run: `incoming` in NET-b, `run` in NET-a, a warm-up (dirtier: until the
# guest has written its working set once, work_units >= wss pages, at most
# $WARM_MAX s; idle: 1 s), then
#     migrate --downtime-limit $DOWNTIME --timeout $TIMEOUT --json
# then `verify` on the destination (on the source when the migration failed:
# the VM must still run there), then stop. The final JSON record of migrate,
# the verify result and derived figures go to $O/bench-mig.json (one object
# per run, one a line); the table goes to $O/bench-mig.txt and stdout.
#
# Derived figures:
#   avg_gbps        bytes_wire * 8 / total time (the whole migration)
#   link_util       avg_gbps / link reference (1 Gbit/s capped; for the uncapped
#                   link the measured veth throughput, $UNCAPPED_REF_GBIT)
#   wire_per_nz     bytes_wire / ((pages_sent - zero_pages) * 4096): bytes on the
#                   wire per non-zero page. The number of resident non-zero
#                   pages is not available from `status`, so non-zero pages
#                   *sent* is the proxy; it equals the resident count only when
#                   nothing is sent twice (the idle guest).
#
# Bounds: migrate --timeout, an outer `timeout` around migrate, --timeout on
# every control request, bounded waits for processes, and a watchdog for the
# whole script ($WATCHDOG_S s). On exit (normal, error, signal, watchdog) every
# process started here is stopped and the test network is taken down.
#
# Needs root (network namespaces), /dev/kvm, python3, iproute2 + tc.
# Environment: O (build dir, default build); optional overrides LINKS
# ("1gbit uncapped"), MEMS ("1G 4G"), LOADS ("idle 25 75"), TIMEOUT (120),
# DOWNTIME (300), WARM_MAX (20), WATCHDOG_S (1500), UNCAPPED_REF_GBIT (13.0).

ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cd "$ROOT" || exit 1
O=${O:-build}
case $O in /*) OUT=$O ;; *) OUT=$ROOT/$O ;; esac
HM=$OUT/hybridmig
NETSH="bash $ROOT/tools/testnet.sh"
LINKS=${LINKS:-1gbit uncapped}
MEMS=${MEMS:-1G 4G}
LOADS=${LOADS:-idle 25 75}
TIMEOUT=${TIMEOUT:-120}
DOWNTIME=${DOWNTIME:-300}
WARM_MAX=${WARM_MAX:-20}
WATCHDOG_S=${WATCHDOG_S:-1500}
UNCAPPED_REF_GBIT=${UNCAPPED_REF_GBIT:-13.0}
JSON_OUT=$OUT/bench-mig.json
TXT_OUT=$OUT/bench-mig.txt

NET=hmb$$
NET_UP=0
PIDS=""
WD_PID=""
MAIN=$$
TMP=$(mktemp -d /tmp/hm-bench-mig.XXXXXX) || exit 1

# ---- clean-up --------------------------------------------------------------

# reap PID...: TERM, then KILL after 2 s, then wait.
reap() {
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "$@"; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 20 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}

cleanup() {
	trap - EXIT INT TERM HUP PIPE
	if [ -n "$WD_PID" ]; then
		c=$(pgrep -P "$WD_PID")
		kill -TERM "$WD_PID" 2>/dev/null
		# shellcheck disable=SC2086 # its sleep
		[ -n "$c" ] && kill -TERM $c 2>/dev/null
		wait "$WD_PID" 2>/dev/null
	fi
	# shellcheck disable=SC2086 # a list of pids
	[ -n "$PIDS" ] && reap $PIDS
	[ "$NET_UP" = 1 ] && $NETSH down "$NET" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "bench-mig: interrupted" >&2; exit 130' INT TERM HUP PIPE

fail() {
	echo "bench-mig: $*" >&2
	exit 1
}

# ---- checks ----------------------------------------------------------------

[ -x "$HM" ] || fail "$HM not built (make)"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "bench-mig: skip: /dev/kvm is not usable"
	exit 0
fi
[ "$(id -u)" = 0 ] || fail "needs root (ip netns)"
command -v python3 >/dev/null || fail "needs python3"
command -v timeout >/dev/null || fail "needs timeout (coreutils)"

# ---- watchdog --------------------------------------------------------------
# After WATCHDOG_S s: stop what runs in the test namespaces (so whatever the
# main shell waits for returns) and TERM the main shell, whose trap cleans up.
(
	i=0
	while [ $i -lt "$WATCHDOG_S" ]; do
		sleep 1
		i=$((i + 1))
		kill -0 "$MAIN" 2>/dev/null || exit 0
	done
	echo "bench-mig: watchdog: ${WATCHDOG_S} s elapsed, aborting" >&3
	kill -TERM "$MAIN" 2>/dev/null
	for ns in "$NET-a" "$NET-b"; do
		p=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086
		[ -n "$p" ] && kill -TERM $p 2>/dev/null
	done
) 3>&2 2>/dev/null &
WD_PID=$!

# ---- python helper (JSON in, JSON/table out) -------------------------------

cat >"$TMP/bm.py" <<'EOF'
import json, os, sys

def last_record(path):
    """The last JSON object in a migrate --json output that is not a progress line."""
    rec = None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    o = json.loads(line)
                except ValueError:
                    continue
                if o.get("event") == "progress":
                    continue
                rec = o
    except OSError:
        pass
    return rec

def load1(path):
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    return json.loads(line)
    except (OSError, ValueError):
        pass
    return None

def tail(path, n=3):
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip()]
        return " | ".join(lines[-n:])
    except OSError:
        return ""

def cmd_get(args):
    o = load1(args[0]) or {}
    v = o.get(args[1])
    print("" if v is None else v)

def cmd_record(args):
    e = os.environ
    T = e["BM_T"]
    r = {
        "link": e["BM_LINK"],
        "link_rate_bps": float(e["BM_CAP_BPS"]) if e["BM_CAP_BPS"] else None,
        "rate_ref_bps": float(e["BM_REF_BPS"]),
        "mem": e["BM_MEM"],
        "workload": e["BM_LOAD"],
        "guest": e["BM_GUEST"],
        "wss_pages": int(e["BM_WSS_PAGES"]),
        "rate_pages_per_s": int(e["BM_RATE"]),
        "downtime_limit_ms": float(e["BM_DOWNTIME"]),
        "timeout_s": float(e["BM_TIMEOUT"]),
        "warm_s": float(e["BM_WARM_S"]),
        "other_hybridmig_procs": int(e["BM_OTHERS"]),
        "host_load1_before": float(e["BM_LOAD1"]),
        "migrate_cmd": e["BM_CMD"],
        "migrate_rc": int(e["BM_RC"]),
    }
    st = load1(T + "/status.json") or {}
    r["warm_work_units"] = st.get("work_units")
    r["warm_work_units_per_s"] = st.get("work_units_per_s")
    m = last_record(T + "/m.out")
    if m is None:
        r["error"] = tail(T + "/m.err") or "no record from migrate"
        m = {}
    elif not m.get("ok", False):
        r["error"] = m.get("error") or tail(T + "/m.err")
    for k, v in m.items():
        if k in ("ok", "event"):
            continue
        r.setdefault(k, v)
    r["migrated"] = r["migrate_rc"] == 0 and m.get("ok") is True
    vf = load1(T + "/verify.json") or {}
    r["verify_on"] = e["BM_VERIFY_ON"]
    r["verify"] = vf.get("verify", "none")
    r["verify_bad_pages"] = vf.get("verify_bad_pages")
    r["verify_pages_checked"] = vf.get("verify_pages_checked")
    if r["migrated"]:
        tot = float(m.get("total_ms") or 0) / 1e3
        wire = float(m.get("bytes_wire") or 0)
        raw = float(m.get("bytes_raw") or 0)
        nz = int(m.get("pages_sent") or 0) - int(m.get("zero_pages") or 0)
        r["avg_gbps"] = wire * 8 / tot / 1e9 if tot > 0 else None
        ref = float(e["BM_UTIL_REF_BPS"])
        r["link_util_ref_bps"] = ref
        r["link_util"] = wire * 8 / tot / ref if tot > 0 else None
        r["wire_over_raw"] = wire / raw if raw > 0 else None
        r["nonzero_pages_sent"] = nz
        r["wire_per_nonzero_page"] = wire / (nz * 4096) if nz > 0 else None
        dl = r["downtime_limit_ms"]
        r["downtime_over_limit"] = float(m.get("downtime_ms") or 0) > dl
    if e.get("BM_SRC_ERR"):
        r["source_stderr_tail"] = tail(e["BM_SRC_ERR"])
    if e.get("BM_DST_ERR"):
        r["dest_stderr_tail"] = tail(e["BM_DST_ERR"])
    with open(e["BM_JSON"], "a") as f:
        f.write(json.dumps(r, sort_keys=False) + "\n")
    # one line for the log
    if r["migrated"]:
        print("  -> total %.1f s, downtime %.1f ms (predicted %.1f), rounds %s, %.0f MiB wire, %.0f Mbit/s, verify %s"
              % (m["total_ms"] / 1e3, m["downtime_ms"], m["predicted_downtime_ms"], m["rounds"],
                 m["bytes_wire"] / 2**20, m["bandwidth_mbps"], r["verify"]))
    else:
        print("  -> FAILED (rc %d): %s; verify on %s: %s" % (r["migrate_rc"], r.get("error"), r["verify_on"], r["verify"]))

def f(v, fmt, dash="-"):
    if v is None:
        return dash
    try:
        return fmt % v
    except TypeError:
        return str(v)

def cmd_table(args):
    path, hdr = args[0], args[1:]
    rows = []
    try:
        with open(path) as fh:
            rows = [json.loads(l) for l in fh if l.strip()]
    except OSError:
        pass
    out = []
    out += hdr
    cols = [("link", 8, "<"), ("mem", 4, "<"), ("load", 10, "<"), ("pg/s", 7, ">"), ("warm_s", 6, ">"),
            ("result", 9, "<"), ("total_s", 7, ">"), ("down_ms", 8, ">"), ("pred_ms", 8, ">"),
            ("gpause", 8, ">"), ("rnd", 4, ">"), ("wire_MiB", 8, ">"), ("w/raw", 5, ">"),
            ("zero_pg", 8, ">"), ("bw_Mbps", 8, ">"), ("avgGbps", 7, ">"), ("util", 5, ">"),
            ("w/nz", 5, ">"), ("verify", 6, "<")]
    line = " ".join(("%" + ("-" if a == "<" else "") + str(w) + "s") % n for n, w, a in cols)
    out.append(line)
    out.append("-" * len(line))
    notes = []
    for r in rows:
        load = r["workload"] if r["workload"] == "idle" else "dirt %s%%" % r["workload"]
        mig = r.get("migrated")
        if mig:
            res = "ok"
            if r.get("downtime_over_limit"):
                res = "ok>limit"
        else:
            res = "timeout" if "time" in str(r.get("error", "")).lower() else "FAILED"
        vals = [r["link"], r["mem"], load, str(r["rate_pages_per_s"]) if r["workload"] != "idle" else "-",
                f(r.get("warm_s"), "%.1f"), res,
                f(r["total_ms"] / 1e3 if r.get("total_ms") is not None else None, "%.1f"),
                f(r.get("downtime_ms"), "%.1f"), f(r.get("predicted_downtime_ms"), "%.1f"),
                f(r.get("guest_pause_ms"), "%.1f"), f(r.get("rounds"), "%d"),
                f(r["bytes_wire"] / 2**20 if r.get("bytes_wire") is not None else None, "%.0f"),
                f(r.get("wire_over_raw"), "%.3f"), f(r.get("zero_pages"), "%d"),
                f(r.get("bandwidth_mbps"), "%.0f"), f(r.get("avg_gbps"), "%.2f"),
                f(r["link_util"] * 100 if r.get("link_util") is not None else None, "%.0f%%"),
                f(r.get("wire_per_nonzero_page"), "%.2f"),
                ("%s(%s)" % (r.get("verify"), "src") if r.get("verify_on") == "source" else r.get("verify", "-"))]
        out.append(" ".join(("%" + ("-" if a == "<" else "") + str(w) + "s") % (v,) for v, (n, w, a) in zip(vals, cols)))
        if not mig:
            notes.append("%s %s %s: %s" % (r["link"], r["mem"], load, r.get("error")))
    out.append("")
    out.append("result: ok = migrated, ok>limit = migrated with downtime above the limit, timeout = pre-copy did not")
    out.append("converge within --timeout (VM left running on the source, verified there: verify(src)).")
    out.append("util = avgGbps / link (1 Gbit/s capped; uncapped: the measured veth rate). w/nz = bytes_wire /")
    out.append("(non-zero pages sent * 4096), the non-zero resident pages proxied by non-zero pages sent")
    out.append("(exact only when no page is sent twice: the idle rows). gpause = guest_pause_ms. total_s is migrate's")
    out.append("total_ms: it includes the ~1 s after the switch-over in which the destination measures the guest's")
    out.append("work rate, so avgGbps/util are understated by about 1 s / total_s (idle: total ~1 s for a few pages).")
    for r in rows:
        if r.get("migrated") and r.get("round_pages"):
            rp = r["round_pages"]
            if len(rp) > 14:
                rp = rp[:6] + ["..."] + rp[-6:]
            out.append("rounds %s %s %s: %s" % (r["link"], r["mem"], r["workload"], " ".join(str(x) for x in rp)))
    busy = [r for r in rows if r.get("other_hybridmig_procs")]
    if busy:
        out.append("warning: %d of %d runs started while other hybridmig processes ran on this host (figures skewed)"
                   % (len(busy), len(rows)))
    for n in notes:
        out.append("note: " + n)
    print("\n".join(out))

{"get": cmd_get, "record": cmd_record, "table": cmd_table}[sys.argv[1]](sys.argv[2:])
EOF
py() {
	python3 "$TMP/bm.py" "$@"
}

# ---- helpers ---------------------------------------------------------------

calc() {
	awk "BEGIN { printf \"%.0f\\n\", ($1) }"
}

status_to() { # SOCK FILE
	"$HM" status --control "$1" --json --timeout 5 >"$2" 2>/dev/null
}

# wait_sock SOCK PID SECS: until the control socket answers (PID must live).
wait_sock() {
	i=0
	n=$(($3 * 10))
	until "$HM" status --control "$1" --json --timeout 2 >/dev/null 2>&1; do
		kill -0 "$2" 2>/dev/null || return 1
		[ $i -ge "$n" ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}

# wait_gone PID SECS: wait for PID to exit, then reap it (TERM/KILL) anyway.
wait_gone() {
	i=0
	n=$(($2 * 10))
	while kill -0 "$1" 2>/dev/null && [ $i -lt "$n" ]; do
		sleep 0.1
		i=$((i + 1))
	done
	reap "$1"
	PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
}

size_pages() { # 512M / 1G -> 4 KiB pages
	case $1 in
	*G) echo $((${1%G} * 262144)) ;;
	*M) echo $((${1%M} * 256)) ;;
	*) fail "size $1" ;;
	esac
}

write_table() {
	py table "$JSON_OUT" \
		"hybridmig live migration benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) cores)" \
		"pre-copy, --downtime-limit $DOWNTIME ms, --timeout $TIMEOUT s; dirtier pattern=seq, wss 512M (1G guest) / 1G (4G guest);" \
		"dirtier rate = pct of 1 Gbit/s (capped link) or of 10 Gbit/s (uncapped link), in 4 KiB pages/s; warm-up until" \
		"the working set is written once (at most $WARM_MAX s). Capped = tc tbf 1gbit on a veth pair; uncapped = plain veth." \
		"" >"$TXT_OUT.tmp" && mv -f "$TXT_OUT.tmp" "$TXT_OUT"
}

# ---- one run ---------------------------------------------------------------

PORT=$((30000 + $$ % 20000))
RUN=0

# run_one LINK CAP_BPS REF_BPS UTIL_REF_BPS MEM LOAD
run_one() {
	link=$1 cap_bps=$2 ref_bps=$3 util_ref=$4 mem=$5 load=$6
	RUN=$((RUN + 1))
	PORT=$((PORT + 1))
	R=$TMP/r$RUN
	mkdir -p "$R"
	case $mem in 1G) wss=512M ;; 4G) wss=1G ;; *) wss=$(($(size_pages "$mem") / 512))M ;; esac
	wss_pages=$(size_pages "$wss")
	if [ "$load" = idle ]; then
		guest=idle
		rate=0
	else
		rate=$(calc "$load / 100 * $ref_bps / 8 / 4096")
		guest="dirtier:wss=$wss,rate=$rate,pattern=seq"
	fi
	echo "bench-mig: [$RUN] link $link, mem $mem, guest $guest" >&2
	# other VMs on this host skew the figures (2 cores): note them
	others=$(pgrep -x hybridmig | wc -l)
	load1=$(cut -d' ' -f1 /proc/loadavg)
	[ "$others" -gt 0 ] && echo "bench-mig: warning: $others other hybridmig process(es) running (load $load1)" >&2

	ip netns exec "$NET-b" "$HM" incoming ${BENCH_TLS_DST:---insecure} --listen "$B:$PORT" --control "$R/d.sock" --json \
		>"$R/d.out" 2>"$R/d.err" &
	dpid=$!
	ip netns exec "$NET-a" "$HM" run --mem "$mem" --guest "$guest" --control "$R/s.sock" \
		>"$R/s.out" 2>"$R/s.err" &
	spid=$!
	PIDS="$PIDS $dpid $spid"
	wait_sock "$R/s.sock" "$spid" 15 || fail "source VM did not come up: $(cat "$R/s.err")"

	# warm-up
	t0=$(date +%s%N)
	if [ "$load" = idle ]; then
		sleep 1
	else
		while :; do
			status_to "$R/s.sock" "$R/status.json"
			u=$(py get "$R/status.json" work_units)
			el=$((($(date +%s%N) - t0) / 1000000))
			[ -n "$u" ] && [ "$u" -ge "$wss_pages" ] && break
			[ $el -ge $((WARM_MAX * 1000)) ] && break
			sleep 0.25
		done
	fi
	status_to "$R/s.sock" "$R/status.json"
	warm_s=$(awk "BEGIN { printf \"%.1f\", ($(date +%s%N) - $t0) / 1e9 }")

	cmd="ip netns exec $NET-a $HM migrate --control $R/s.sock --to $B:$PORT --downtime-limit $DOWNTIME --timeout $TIMEOUT --json"
	# outer bound: pre-copy timeout + stop-and-copy of everything at a slow rate
	ip netns exec "$NET-a" timeout -k 5 $((TIMEOUT + 90)) "$HM" migrate ${BENCH_TLS_SRC:---insecure} --control "$R/s.sock" \
		--to "$B:$PORT" --downtime-limit "$DOWNTIME" --timeout "$TIMEOUT" --json \
		>"$R/m.out" 2>"$R/m.err"
	rc=$?

	verify_on=destination
	if [ $rc -eq 0 ] && wait_sock "$R/d.sock" "$dpid" 15; then
		"$HM" verify --control "$R/d.sock" --json --timeout 60 >"$R/verify.json" 2>/dev/null
		"$HM" stop --control "$R/d.sock" --json --timeout 5 >/dev/null 2>&1
		wait_gone "$dpid" 10
		wait_gone "$spid" 10
	else
		verify_on=source
		"$HM" verify --control "$R/s.sock" --json --timeout 60 >"$R/verify.json" 2>/dev/null
		"$HM" stop --control "$R/s.sock" --json --timeout 5 >/dev/null 2>&1
		wait_gone "$spid" 10
		wait_gone "$dpid" 0
	fi

	BM_T=$R BM_LINK=$link BM_CAP_BPS=$cap_bps BM_REF_BPS=$ref_bps BM_UTIL_REF_BPS=$util_ref \
		BM_MEM=$mem BM_LOAD=$load BM_GUEST=$guest BM_WSS_PAGES=$([ "$load" = idle ] && echo 0 || echo "$wss_pages") \
		BM_RATE=$rate BM_DOWNTIME=$DOWNTIME BM_TIMEOUT=$TIMEOUT BM_WARM_S=$warm_s \
		BM_OTHERS=$others BM_LOAD1=$load1 BM_CMD="$cmd" BM_RC=$rc BM_VERIFY_ON=$verify_on BM_JSON=$JSON_OUT \
		BM_SRC_ERR=$([ $rc -eq 0 ] || echo "$R/s.err") BM_DST_ERR=$([ $rc -eq 0 ] || echo "$R/d.err") \
		py record >&2
	write_table
}

# ---- main ------------------------------------------------------------------

: >"$JSON_OUT" || fail "cannot write $JSON_OUT"
write_table
start=$(date +%s)
for link in $LINKS; do
	case $link in
	1gbit) up_args="--rate 1gbit" cap=1000000000 ref=1000000000 uref=1000000000 ;;
	uncapped) up_args="" cap="" ref=10000000000 uref=$(awk "BEGIN { printf \"%.0f\", $UNCAPPED_REF_GBIT * 1e9 }") ;;
	*) fail "unknown link '$link' (1gbit, uncapped)" ;;
	esac
	# shellcheck disable=SC2086
	$NETSH up "$NET" $up_args >"$TMP/net.log" 2>&1 || fail "testnet up: $(cat "$TMP/net.log")"
	NET_UP=1
	B=$($NETSH addr "$NET" b)
	for mem in $MEMS; do
		for load in $LOADS; do
			run_one "$link" "$cap" "$ref" "$uref" "$mem" "$load"
		done
	done
	$NETSH down "$NET" >/dev/null 2>&1
	NET_UP=0
done
echo "bench-mig: done in $(($(date +%s) - start)) s; $TXT_OUT, $JSON_OUT" >&2
cat "$TXT_OUT"
