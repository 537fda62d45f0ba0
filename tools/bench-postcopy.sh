#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-postcopy: post-copy and hybrid migration figures across the
# two-namespace test network, against the issue's targets
# (make bench-postcopy).
#
# Floor: tools/bench_uffd.c (the local userfaultfd round trip through the
# destination's fault thread and placement code), built against $O's objects
# and run $FLOOR_RUNS times; the median p50/p99 of fault -> placed is kept.
#
# Matrix (trimmed to ~12 minutes):
#   link           RTT                         guests
#   tbf 1gbit      direct (~0.1 ms)            1G and 4G: idle, zipf, seq 1.5x, seq 2x
#   tbf 1gbit      proxy 0.5 ms each way (1)   1G: idle, zipf, seq 1.5x
#   tbf 1gbit      proxy 5 ms each way (10)    1G: idle, zipf, seq 1.5x
#   tbf 10gbit     direct                      1G: idle, zipf, seq 1.5x
# modes: postcopy and hybrid for every case; precopy (--timeout $PRE_TIMEOUT)
# for seq 1.5x on the direct 1gbit link, guest RAM in $PRE_MEMS (to show that
# it does not converge).
# Guests: idle; zipf = dirtier pattern=zipf, wss = half of RAM, rate 50000
# pages/s; seq Nx = dirtier pattern=seq, wss 512M (1G guest) / 1G (4G guest),
# rate = N * link_bytes_per_s / 4096 pages/s (1gbit: 45776 / 61035; 10gbit:
# 457764). Delay runs go through tools/testnet.sh's delay proxy: migrate
# connects to NET-a's proxy port, which forwards to `incoming` in NET-b (both
# the bulk and the urgent connection pass through it).
#
# Each run: `incoming` in NET-b, `run` in NET-a, a warm-up (dirtier: until
# work_units >= wss pages, at most $WARM_MAX s; idle: 1 s), the source's
# resident anonymous memory (RssAnon, the touched RAM plus a few MiB of VMM),
# then
#     migrate --mode MODE --timeout T --json
# then `verify` on the destination (on the source when the migration failed),
# then stop. The final JSON record of migrate, the verify result, derived
# figures and the target checks go to $O/bench-postcopy.json (one object per
# run, one a line; the floor is the first object, "kind":"floor"); the table
# and the notes go to $O/bench-postcopy.txt and stdout.
#
# Targets (the issue's), checked per run where they apply:
#   D  downtime_ms <= 1 ms (1 vCPU), runs that switched to post-copy
#   T  total_ms <= 1.1 * touched RAM * 8 / link cap (touched = RssAnon before
#      migrate; cap = nominal 1e9 / 1e10 bit/s), non-idle runs
#   W  post-copy work rate / work_units_per_s_before >= 0.85 (seq) / 0.90
#      (zipf); the post-copy rate is measured here from the destination's
#      status (work_units every 50 ms over the post-copy phase): hybridmig's
#      own work_units_per_s_postcopy starts counting from 0 instead of from the
#      units at the switch (src/dest.c, dest_postcopy), so it is inflated
#   F  fault_latency_p99_us <= RTT + 2 * floor p50 (RTT = nominal 0.1 ms direct,
#      0.1 + 2 * delay through the proxy), runs with remote faults
#   L  link use = bytes_wire * 8 / total_s / cap >= 0.90, non-idle runs
#   N  remote_faults / wss_pages <= 0.10, non-idle runs
#
# Before measuring, waits (at most $BUSY_WAIT_S s) while
# `pgrep -f "make.*asan|run-tests.sh|bench-mig.sh|tests/e2e/test_"` ($BUSY_PAT)
# finds something: those share the cores (2 here). Each run records the
# other hybridmig processes and busy test processes it started next to. Bounds: migrate --timeout, an outer `timeout` around
# migrate, --timeout on every control request, bounded waits for processes,
# and a watchdog for the whole script ($WATCHDOG_S s). On exit (normal,
# error, signal, watchdog) every process started here is stopped and the test
# network is taken down.
#
# Needs root (network namespaces), /dev/kvm, userfaultfd, cc, python3,
# iproute2 + tc. Environment: O (build dir, default build); optional
# overrides TIMEOUT (60, post-copy/hybrid), PRE_TIMEOUT (20), PRE_MEMS (1G),
# WARM_MAX (20), WATCHDOG_S (1800), BUSY_WAIT_S (600), FLOOR_RUNS (3),
# SETS ("d1g p05 p5 d10g": which parts of the matrix to run), LOADS ("idle
# zipf seq150 seq200"; seq200 only on the direct 1gbit link), MEMS ("1G 4G",
# direct 1gbit link only).

ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cd "$ROOT" || exit 1
O=${O:-build}
case $O in /*) OUT=$O ;; *) OUT=$ROOT/$O ;; esac
HM=$OUT/hybridmig
NETSH="bash $ROOT/tools/testnet.sh"
TIMEOUT=${TIMEOUT:-60}
PRE_TIMEOUT=${PRE_TIMEOUT:-20}
PRE_MEMS=${PRE_MEMS:-1G}
WARM_MAX=${WARM_MAX:-20}
WATCHDOG_S=${WATCHDOG_S:-1800}
BUSY_WAIT_S=${BUSY_WAIT_S:-600}
FLOOR_RUNS=${FLOOR_RUNS:-3}
SETS=${SETS:-d1g p05 p5 d10g}
LOADS=${LOADS:-idle zipf seq150 seq200}
MEMS=${MEMS:-1G 4G}
BUSY_PAT=${BUSY_PAT:-make.*asan|run-tests.sh|bench-mig.sh|tests/e2e/test_}
JSON_OUT=$OUT/bench-postcopy.json
TXT_OUT=$OUT/bench-postcopy.txt
UFFD_BIN=$OUT/tools/bench_uffd

NET=hbpc$$
NET_UP=0
PIDS=""
WD_PID=""
MAIN=$$
TMP=$(mktemp -d /tmp/hm-bench-postcopy.XXXXXX) || exit 1

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
	# testnet down also stops its proxies and whatever is left in the namespaces
	[ "$NET_UP" = 1 ] && $NETSH down "$NET" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "bench-postcopy: interrupted" >&2; exit 130' INT TERM HUP PIPE

fail() {
	echo "bench-postcopy: $*" >&2
	exit 1
}

# ---- checks ----------------------------------------------------------------

[ -x "$HM" ] || fail "$HM not built (make)"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "bench-postcopy: skip: /dev/kvm is not usable"
	exit 0
fi
[ "$(id -u)" = 0 ] || fail "needs root (ip netns)"
command -v python3 >/dev/null || fail "needs python3"
command -v timeout >/dev/null || fail "needs timeout (coreutils)"
command -v "${CC:-cc}" >/dev/null || fail "needs ${CC:-cc} (for bench_uffd)"

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
	echo "bench-postcopy: watchdog: ${WATCHDOG_S} s elapsed, aborting" >&3
	kill -TERM "$MAIN" 2>/dev/null
	for ns in "$NET-a" "$NET-b"; do
		p=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086
		[ -n "$p" ] && kill -TERM $p 2>/dev/null
	done
) 3>&2 2>/dev/null &
WD_PID=$!

# ---- python helper (JSON in, JSON/table out) -------------------------------

cat >"$TMP/bp.py" <<'EOF'
import json, os, re, statistics, sys

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

def cmd_poll(args):
    """poll SOCK OUT STOPFILE: sample the destination's work_units every 50 ms
    (one connection, re-opened if it drops) until STOPFILE exists (at most 400 s)."""
    import socket, time
    sock, out, stop = args
    t_end = time.time() + 400
    s = rf = None
    with open(out, "w") as fo:
        while time.time() < t_end and not os.path.exists(stop):
            try:
                if s is None:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(2)
                    s.connect(sock)
                    rf = s.makefile("r")
                s.sendall(b'{"cmd":"status"}\n')
                line = rf.readline()
                t = time.time_ns()
                if not line:
                    raise OSError("closed")
                o = json.loads(line)
                if o.get("work_units") is not None:
                    fo.write("%d %d %s\n" % (t, o["work_units"], o.get("state", "")))
                    fo.flush()
            except (OSError, ValueError):
                if s is not None:
                    s.close()
                s = rf = None
            time.sleep(0.05)

def pc_rate(path, t0_ns, t1_ns, u_min):
    """Work units/s on the destination between t0 and t1, from the poller's samples.
    Only samples whose units reached u_min (the source's count at the end of the
    warm-up) count: before the guest state is restored the destination may report
    0 (or another count) while its VM exists."""
    smp = []
    try:
        with open(path) as f:
            for l in f:
                p = l.split()
                if len(p) >= 3 and p[2] == "running" and int(p[1]) >= u_min:
                    smp.append((int(p[0]), int(p[1])))
    except OSError:
        return None, 0, 0
    w = [x for x in smp if t0_ns <= x[0] <= t1_ns]
    if len(w) < 2 or w[-1][0] - w[0][0] < 150_000_000:
        return None, len(w), (w[-1][0] - w[0][0]) / 1e9 if len(w) >= 2 else 0
    dt = (w[-1][0] - w[0][0]) / 1e9
    return (w[-1][1] - w[0][1]) / dt, len(w), dt

FLOOR_RE = re.compile(r"per page ([0-9.]+) us; fault->placed p50 (\d+) us, p90 (\d+) us, "
                      r"p99 (\d+) us, max (\d+) us; (\d+) faults")

def cmd_floor(args):
    """floor JSON_OUT OUT_FILE...: parse bench_uffd outputs, write the floor object."""
    out, files = args[0], args[1:]
    runs = []
    for p in files:
        try:
            txt = open(p, errors="replace").read()
        except OSError:
            continue
        m = FLOOR_RE.search(txt)
        if m:
            runs.append({"per_page_us": float(m.group(1)), "p50_us": int(m.group(2)),
                         "p90_us": int(m.group(3)), "p99_us": int(m.group(4)),
                         "max_us": int(m.group(5)), "faults": int(m.group(6)), "line": txt.strip()})
    r = {"kind": "floor", "tool": "tools/bench_uffd.c", "runs": runs}
    if runs:
        r["p50_us"] = statistics.median(x["p50_us"] for x in runs)
        r["p99_us"] = statistics.median(x["p99_us"] for x in runs)
        r["per_page_us"] = statistics.median(x["per_page_us"] for x in runs)
        r["max_us"] = max(x["max_us"] for x in runs)
    else:
        r["error"] = " / ".join(tail(p) for p in files) or "no output"
    with open(out, "a") as f:
        f.write(json.dumps(r) + "\n")
    print("%s %s" % (r.get("p50_us", ""), r.get("p99_us", "")))

def target(val, limit, ok_if_le=True):
    if val is None or limit is None:
        return None
    return {"value": val, "limit": limit, "ok": (val <= limit) if ok_if_le else (val >= limit)}

def cmd_record(args):
    e = os.environ
    T = e["BP_T"]
    cap = float(e["BP_CAP_BPS"])
    r = {
        "kind": "migration",
        "link": e["BP_LINK"],
        "link_cap_bps": cap,
        "path": e["BP_PATH"],
        "proxy_delay_ms": float(e["BP_DELAY"]) if e["BP_DELAY"] else None,
        "rtt_nominal_ms": float(e["BP_RTT"]),
        "mem": e["BP_MEM"],
        "workload": e["BP_LOAD"],
        "guest": e["BP_GUEST"],
        "wss_pages": int(e["BP_WSS_PAGES"]),
        "rate_pages_per_s": int(e["BP_RATE"]),
        "mode": e["BP_MODE"],
        "timeout_s": float(e["BP_TIMEOUT"]),
        "warm_s": float(e["BP_WARM_S"]),
        "src_rss_anon_bytes": int(e["BP_RSS_KB"] or 0) * 1024,
        "other_hybridmig_procs": int(e["BP_OTHERS"]),
        "busy_procs": e["BP_BUSY"],
        "host_load1_before": float(e["BP_LOAD1"]),
        "migrate_cmd": e["BP_CMD"],
        "migrate_rc": int(e["BP_RC"]),
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
    r["verify_on"] = e["BP_VERIFY_ON"]
    r["verify"] = vf.get("verify", "none")
    r["verify_bad_pages"] = vf.get("verify_bad_pages")
    r["verify_pages_checked"] = vf.get("verify_pages_checked")
    floor_p50 = float(e["BP_FLOOR_P50"]) if e.get("BP_FLOOR_P50") else None
    idle = r["workload"] == "idle"
    tg = {}
    if r["migrated"]:
        tot = float(m.get("total_ms") or 0) / 1e3
        wire = float(m.get("bytes_wire") or 0)
        r["total_s"] = tot
        r["link_use"] = wire * 8 / tot / cap if tot > 0 else None
        lp = float(m.get("last_page_ms") or 0) / 1e3
        r["link_use_to_last_page"] = wire * 8 / lp / cap if lp > 0 else None
        touched = r["src_rss_anon_bytes"]
        r["touched_bytes"] = touched
        r["total_target_s"] = 1.1 * touched * 8 / cap if touched else None
        pc = bool(m.get("postcopy"))
        before = float(m.get("work_units_per_s_before") or 0)
        # hybridmig's work_units_per_s_postcopy counts the guest's units from 0, not
        # from the switch (src/dest.c dest_postcopy: units0 = 0), so it includes every
        # unit done before the migration; measure the post-copy rate from the
        # destination's status instead: samples from the start of migrate to its
        # total_ms (the end of post-copy).
        t0 = int(e["BP_MIG_T0"])
        rate, nsmp, span = pc_rate(T + "/dpoll.txt", t0, t0 + int(tot * 1e9),
                                   max(1, int(r["warm_work_units"] or 0)))
        r["work_units_per_s_postcopy_measured"] = rate
        r["postcopy_rate_samples"] = nsmp
        r["postcopy_rate_span_s"] = span
        during = rate if pc else m.get("work_units_per_s_during")
        r["work_ratio"] = float(during) / before if (before > 0 and during is not None) else None
        rf = m.get("remote_faults")
        r["remote_fault_share"] = (float(rf) / r["wss_pages"]) if (rf is not None and r["wss_pages"]) else None
        if r["mode"] != "precopy":
            if pc:
                tg["D"] = target(float(m.get("downtime_ms") or 0), 1.0)
            if not idle:
                tg["T"] = target(tot, r["total_target_s"])
                tg["L"] = target(r["link_use"], 0.90, ok_if_le=False)
                if pc:
                    lim = 0.85 if r["workload"].startswith("seq") else 0.90
                    tg["W"] = target(r["work_ratio"], lim, ok_if_le=False)
                    tg["N"] = target(r["remote_fault_share"], 0.10)
            if pc and rf and floor_p50 is not None:
                lim_us = r["rtt_nominal_ms"] * 1000 + 2 * floor_p50
                tg["F"] = target(float(m.get("fault_latency_p99_us") or 0), lim_us)
        tg = {k: v for k, v in tg.items() if v is not None}
    r["targets"] = tg
    if not r["migrated"] or r["verify"] != "ok":
        r["source_stderr_tail"] = tail(e["BP_SRC_ERR"])
        r["dest_stderr_tail"] = tail(e["BP_DST_ERR"])
        r["migrate_stderr_tail"] = tail(T + "/m.err")
    with open(e["BP_JSON"], "a") as f:
        f.write(json.dumps(r, sort_keys=False) + "\n")
    if r["migrated"]:
        print("  -> %s: total %.2f s, downtime %.3f ms, p50/p99 %s/%s us, remote %s, %.0f MiB wire, "
              "use %.0f%%, work %s, verify %s"
              % ("post-copy" if m.get("postcopy") else "pre-copy switch", r["total_s"], m.get("downtime_ms", -1),
                 m.get("fault_latency_p50_us", "-"), m.get("fault_latency_p99_us", "-"),
                 m.get("remote_faults", "-"), m.get("bytes_wire", 0) / 2**20,
                 (r["link_use"] or 0) * 100,
                 "%.2f" % r["work_ratio"] if r["work_ratio"] is not None else "-", r["verify"]))
    else:
        print("  -> FAILED (rc %d): %s; verify on %s: %s" % (r["migrate_rc"], r.get("error"), r["verify_on"], r["verify"]))

def f(v, fmt, dash="-"):
    if v is None:
        return dash
    try:
        return fmt % v
    except TypeError:
        return str(v)

TNAMES = [("D", "post-copy downtime <= 1 ms (1 vCPU)"),
          ("T", "total time <= 1.1 x touched RAM / link cap"),
          ("W", "guest work rate during post-copy >= 85 % (seq) / 90 % (zipf) of before"),
          ("F", "fault p99 <= RTT + 2 x local uffd round trip (floor p50)"),
          ("L", "link use (bytes_wire*8/total_s / cap) >= 90 %"),
          ("N", "remote (network) faults <= 10 % of the working set")]

def case_name(r):
    return "%s %s %s %s %s" % (r["link"], r["path"], r["mem"], r["workload"], r["mode"])

def cmd_table(args):
    path, hdr = args[0], args[1:]
    rows, floor = [], None
    try:
        with open(path) as fh:
            for l in fh:
                if not l.strip():
                    continue
                o = json.loads(l)
                if o.get("kind") == "floor":
                    floor = o
                else:
                    rows.append(o)
    except OSError:
        pass
    out = list(hdr)
    if floor:
        if floor.get("runs"):
            out.append("floor (tools/bench_uffd, median of %d): fault->placed p50 %s us, p99 %s us, max %s us; per page %.1f us"
                       % (len(floor["runs"]), floor["p50_us"], floor["p99_us"], floor["max_us"], floor["per_page_us"]))
        else:
            out.append("floor: bench_uffd failed: %s" % floor.get("error"))
    out.append("")
    cols = [("link", 6, "<"), ("rtt", 5, "<"), ("mem", 3, "<"), ("load", 7, "<"), ("mode", 8, "<"),
            ("result", 8, "<"), ("total_s", 7, ">"), ("tgt_s", 6, ">"), ("down_ms", 8, ">"), ("gpause", 7, ">"),
            ("p50us", 6, ">"), ("p99us", 6, ">"), ("rf/wss", 6, ">"), ("wireMiB", 7, ">"), ("use", 4, ">"),
            ("work", 5, ">"), ("verify", 6, "<"), ("targets", 17, "<")]
    line = " ".join(("%" + ("-" if a == "<" else "") + str(w) + "s") % n for n, w, a in cols)
    out.append(line)
    out.append("-" * len(line))
    for r in rows:
        mig = r.get("migrated")
        if mig:
            res = "post" if r.get("postcopy") else "pre"
        else:
            res = "timeout" if "time" in str(r.get("error", "")).lower() else "FAILED"
        tg = r.get("targets") or {}
        tstr = " ".join(k + ("." if k not in tg else ("+" if tg[k]["ok"] else "-")) for k, _ in TNAMES)
        rtt = "%g" % r["rtt_nominal_ms"]
        vals = [r["link"], rtt, r["mem"], r["workload"], r["mode"], res,
                f(r.get("total_s"), "%.2f"), f(r.get("total_target_s"), "%.2f"),
                f(r.get("downtime_ms"), "%.3f"), f(r.get("guest_pause_ms"), "%.1f"),
                f(r.get("fault_latency_p50_us"), "%d"), f(r.get("fault_latency_p99_us"), "%d"),
                f(r["remote_fault_share"] * 100 if r.get("remote_fault_share") is not None else None, "%.1f%%"),
                f(r["bytes_wire"] / 2**20 if r.get("bytes_wire") is not None else None, "%.0f"),
                f(r["link_use"] * 100 if r.get("link_use") is not None else None, "%.0f%%"),
                f(r.get("work_ratio"), "%.2f"),
                ("%s(%s)" % (r.get("verify"), "src") if r.get("verify_on") == "source" else r.get("verify", "-")),
                tstr]
        out.append(" ".join(("%" + ("-" if a == "<" else "") + str(w) + "s") % (v,) for v, (n, w, a) in zip(vals, cols)))
    out.append("")
    out.append("rtt = nominal RTT in ms (direct ~0.1; proxy 0.1 + 2 x one-way delay). result: post = switched to post-copy,")
    out.append("pre = completed by a pre-copy stop-and-copy, timeout = pre-copy did not converge within --timeout (VM left")
    out.append("running on the source, verified there: verify(src)). tgt_s = 1.1 x touched RAM (source RssAnon before")
    out.append("migrate) x 8 / cap. gpause = guest_pause_ms. rf/wss = remote_faults / working-set pages. use = bytes_wire")
    out.append("x 8 / total_s / cap (nominal 1 or 10 Gbit/s; tbf delivers ~0.96 / ~9.5 with one TCP stream). work =")
    out.append("post-copy rate / work_units_per_s_before, the post-copy rate measured from the destination's status every")
    out.append("50 ms between the switch and the end of post-copy (hybridmig's own work_units_per_s_postcopy counts the")
    out.append("units done before the migration too; kept in the JSON); pre-copy rows: _during / _before.")
    out.append("targets: X+ met, X- missed, X. not applicable (idle guest, no post-copy, no remote faults).")
    out.append("")
    out.append("notes: the issue's targets")
    for k, name in TNAMES:
        met = [r for r in rows if k in (r.get("targets") or {}) and r["targets"][k]["ok"]]
        miss = [r for r in rows if k in (r.get("targets") or {}) and not r["targets"][k]["ok"]]
        state = "MET" if met and not miss else ("MISSED" if miss and not met else ("PARTLY MET" if met else "n/a"))
        out.append("  %s %s: %s in %d of %d runs it applies to" % (k, name, state, len(met), len(met) + len(miss)))
        for r in miss[:12]:
            t = r["targets"][k]
            out.append("      missed: %-40s %s vs %s" % (case_name(r), fmt_t(k, t["value"]), fmt_t(k, t["limit"])))
        if len(miss) > 12:
            out.append("      ... and %d more (see the JSON)" % (len(miss) - 12))
    bad = [r for r in rows if r.get("verify") != "ok"]
    failed = [r for r in rows if not r.get("migrated")]
    for r in failed:
        exp = " (expected: pre-copy of a writer faster than the link)" if r["mode"] == "precopy" else ""
        out.append("  did not migrate: %s: %s%s" % (case_name(r), r.get("error"), exp))
    for r in bad:
        out.append("  VERIFY %s: %s (on the %s, %s bad pages)" % (r.get("verify"), case_name(r), r.get("verify_on"),
                                                               r.get("verify_bad_pages")))
    pcs = [r for r in rows if r.get("postcopy") and r.get("work_units_per_s_postcopy_measured")]
    if pcs:
        r = pcs[0]
        out.append("  hybridmig's work_units_per_s_postcopy is inflated (counts from 0, src/dest.c dest_postcopy units0 = 0):")
        out.append("      e.g. %s: reported %s units/s, measured %.0f, before %s (set rate %s)" % (
            case_name(r), r.get("work_units_per_s_postcopy"), r["work_units_per_s_postcopy_measured"],
            r.get("work_units_per_s_before"), r.get("rate_pages_per_s")))
    hyb_pre = [r for r in rows if r["mode"] == "hybrid" and r.get("migrated") and not r.get("postcopy")]
    for r in hyb_pre:
        out.append("  hybrid finished in pre-copy (no switch): %s, downtime %.3f ms (predicted %s ms)" % (
            case_name(r), r.get("downtime_ms", -1), r.get("predicted_downtime_ms")))
    slow = [r for r in rows if r["workload"].startswith("seq") and r.get("warm_work_units_per_s") is not None
            and r["rate_pages_per_s"] and r["warm_work_units_per_s"] < 0.9 * r["rate_pages_per_s"]]
    for r in slow:
        out.append("  guest below its set rate: %s: %s of %d pages/s before migrating" % (
            case_name(r), r["warm_work_units_per_s"], r["rate_pages_per_s"]))
    busy = [r for r in rows if r.get("other_hybridmig_procs") or r.get("busy_procs")]
    if busy:
        out.append("  warning: %d of %d runs started while other hybridmig processes or test runs were on this host"
                   % (len(busy), len(rows)))
    print("\n".join(out))

def fmt_t(k, v):
    if v is None:
        return "-"
    if k == "D":
        return "%.3f ms" % v
    if k == "T":
        return "%.2f s" % v
    if k in ("W", "L", "N"):
        return "%.1f%%" % (v * 100)
    if k == "F":
        return "%.0f us" % v
    return str(v)

{"get": cmd_get, "poll": cmd_poll, "floor": cmd_floor, "record": cmd_record, "table": cmd_table}[sys.argv[1]](sys.argv[2:])
EOF
py() {
	python3 "$TMP/bp.py" "$@"
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

FLOOR_P50=""
FLOOR_P99=""

write_table() {
	py table "$JSON_OUT" \
		"hybridmig post-copy benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) cores)" \
		"modes postcopy/hybrid (--timeout $TIMEOUT s), precopy (--timeout $PRE_TIMEOUT s) for seq 1.5x on direct 1gbit;" \
		"tc tbf caps on a veth pair, delay through tools/delayproxy; guests: idle, zipf (wss = RAM/2, 50000 pages/s)," \
		"seq Nx (wss 512M / 1G, N x link rate in 4 KiB pages/s); warm-up until wss pages written (at most $WARM_MAX s)." \
		>"$TXT_OUT.tmp" && mv -f "$TXT_OUT.tmp" "$TXT_OUT"
}

# ---- one run ---------------------------------------------------------------

PORT=$((30000 + $$ % 20000))
RUN=0

# run_one LINK CAP_BPS DELAY_MS("" = direct) MEM LOAD MODE
run_one() {
	link=$1 cap_bps=$2 delay=$3 mem=$4 load=$5 mode=$6
	RUN=$((RUN + 1))
	PORT=$((PORT + 2))
	R=$TMP/r$RUN
	mkdir -p "$R"
	mem_pages=$(size_pages "$mem")
	case $load in
	idle)
		guest=idle rate=0 wss_pages=0
		;;
	zipf)
		wss=$((mem_pages / 2 / 256))M
		wss_pages=$(size_pages "$wss")
		rate=50000
		guest="dirtier:wss=$wss,rate=$rate,pattern=zipf"
		;;
	seq*)
		case $mem in 1G) wss=512M ;; 4G) wss=1G ;; *) wss=$((mem_pages / 2 / 256))M ;; esac
		wss_pages=$(size_pages "$wss")
		x=${load#seq}
		rate=$(calc "$x / 100 * $cap_bps / 8 / 4096")
		guest="dirtier:wss=$wss,rate=$rate,pattern=seq"
		;;
	*) fail "unknown load $load" ;;
	esac
	if [ -n "$delay" ]; then
		path=proxy$delay
		rtt=$(awk "BEGIN { print 0.1 + 2 * $delay }")
		to=$A:$((PORT + 1))
	else
		path=direct
		rtt=0.1
		to=$B:$PORT
	fi
	[ "$mode" = precopy ] && tmo=$PRE_TIMEOUT || tmo=$TIMEOUT
	echo "bench-postcopy: [$RUN] $link $path, mem $mem, $guest, $mode" >&2
	others=$(pgrep -x hybridmig | wc -l)
	busy=$(pgrep -f "$BUSY_PAT" | tr '\n' ' ')
	load1=$(cut -d' ' -f1 /proc/loadavg)
	[ "$others" -gt 0 ] && echo "bench-postcopy: warning: $others other hybridmig process(es) running (load $load1)" >&2

	ip netns exec "$NET-b" "$HM" incoming ${BENCH_TLS_DST:---insecure} --listen "$B:$PORT" --control "$R/d.sock" --json \
		>"$R/d.out" 2>"$R/d.err" &
	dpid=$!
	ip netns exec "$NET-a" "$HM" run --mem "$mem" --guest "$guest" --control "$R/s.sock" \
		>"$R/s.out" 2>"$R/s.err" &
	spid=$!
	PIDS="$PIDS $dpid $spid"
	if [ -n "$delay" ]; then
		$NETSH proxy "$NET" $((PORT + 1)) "$PORT" "$delay" >"$R/proxy.log" 2>&1 ||
			fail "proxy: $(cat "$R/proxy.log")"
	fi
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
	rss_kb=$(awk '/^RssAnon:/ { print $2 }' "/proc/$spid/status" 2>/dev/null)

	# the destination's work units during the migration (see pc_rate)
	py poll "$R/d.sock" "$R/dpoll.txt" "$R/dpoll.stop" &
	ppid=$!
	PIDS="$PIDS $ppid"
	mig_t0=$(date +%s%N)
	cmd="ip netns exec $NET-a $HM migrate --control $R/s.sock --to $to --mode $mode --timeout $tmo --json"
	# outer bound: the migration's own timeout + pushing a 4 GiB guest at a slow rate
	ip netns exec "$NET-a" timeout -k 5 $((tmo + 120)) "$HM" migrate ${BENCH_TLS_SRC:---insecure} --control "$R/s.sock" \
		--to "$to" --mode "$mode" --timeout "$tmo" --json >"$R/m.out" 2>"$R/m.err"
	rc=$?
	: >"$R/dpoll.stop"
	wait_gone "$ppid" 3

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
	[ -n "$delay" ] && $NETSH unproxy "$NET" $((PORT + 1)) >/dev/null 2>&1

	BP_T=$R BP_LINK=$link BP_CAP_BPS=$cap_bps BP_PATH=$path BP_DELAY=$delay BP_RTT=$rtt \
		BP_MEM=$mem BP_LOAD=$load BP_GUEST=$guest BP_WSS_PAGES=$wss_pages BP_RATE=$rate \
		BP_MODE=$mode BP_TIMEOUT=$tmo BP_WARM_S=$warm_s BP_RSS_KB=$rss_kb \
		BP_OTHERS=$others BP_BUSY="$busy" BP_LOAD1=$load1 BP_CMD="$cmd" BP_RC=$rc \
		BP_VERIFY_ON=$verify_on BP_MIG_T0=$mig_t0 BP_JSON=$JSON_OUT BP_FLOOR_P50=$FLOOR_P50 \
		BP_SRC_ERR="$R/s.err" BP_DST_ERR="$R/d.err" \
		py record >&2
	write_table
}

# run_case LINK CAP DELAY MEM LOAD: postcopy and hybrid (+ precopy where asked)
run_case() {
	for mode in postcopy hybrid; do
		run_one "$1" "$2" "$3" "$4" "$5" "$mode"
	done
	if [ "$1" = 1gbit ] && [ -z "$3" ] && [ "$5" = seq150 ]; then
		for pm in $PRE_MEMS; do
			[ "$pm" = "$4" ] && run_one "$1" "$2" "$3" "$4" "$5" precopy
		done
	fi
}

net_up() { # RATE
	$NETSH up "$NET" --rate "$1" >"$TMP/net.log" 2>&1 || fail "testnet up: $(cat "$TMP/net.log")"
	NET_UP=1
	A=$($NETSH addr "$NET" a)
	B=$($NETSH addr "$NET" b)
}

net_down() {
	$NETSH down "$NET" >/dev/null 2>&1
	NET_UP=0
}

# ---- wait for a quiet host ---------------------------------------------------

w=0
while pgrep -f "$BUSY_PAT" >/dev/null 2>&1; do
	[ $w -eq 0 ] && echo "bench-postcopy: waiting (at most $BUSY_WAIT_S s) for: $(pgrep -af "$BUSY_PAT" | head -3 | cut -c1-100 | tr '\n' ';')" >&2
	[ $w -ge "$BUSY_WAIT_S" ] && {
		echo "bench-postcopy: warning: still busy after $BUSY_WAIT_S s; measuring anyway (figures skewed)" >&2
		break
	}
	sleep 5
	w=$((w + 5))
done
[ $w -gt 0 ] && echo "bench-postcopy: waited $w s" >&2

# ---- the floor -------------------------------------------------------------

: >"$JSON_OUT" || fail "cannot write $JSON_OUT"
start=$(date +%s)
mkdir -p "$OUT/tools" || fail "cannot create $OUT/tools"
set -- "$OUT"/uffd/*.o
[ -e "$1" ] || fail "$OUT/uffd/*.o missing (make)"
if ! "${CC:-cc}" -O2 -D_GNU_SOURCE -I. -o "$UFFD_BIN.tmp.$$" tools/bench_uffd.c "$OUT"/uffd/*.o \
	"$OUT/src/bitmap.o" "$OUT/src/mem.o" "$OUT/src/log.o" -lpthread 2>"$TMP/cc.log" ||
	! mv -f "$UFFD_BIN.tmp.$$" "$UFFD_BIN"; then
	rm -f "$UFFD_BIN.tmp.$$"
	fail "building bench_uffd failed: $(cat "$TMP/cc.log")"
fi
floor_files=""
i=1
while [ $i -le "$FLOOR_RUNS" ]; do
	timeout -k 2 30 "$UFFD_BIN" >"$TMP/floor$i.out" 2>&1
	cat "$TMP/floor$i.out" >&2
	floor_files="$floor_files $TMP/floor$i.out"
	i=$((i + 1))
done
# shellcheck disable=SC2086 # a list of files
fl=$(py floor "$JSON_OUT" $floor_files)
FLOOR_P50=${fl%% *}
FLOOR_P99=${fl#* }
[ -n "$FLOOR_P50" ] || echo "bench-postcopy: warning: no floor figures (bench_uffd failed); target F not checked" >&2
echo "bench-postcopy: floor p50 ${FLOOR_P50:-?} us, p99 ${FLOOR_P99:-?} us" >&2
write_table

# ---- the matrix ------------------------------------------------------------

for set in $SETS; do
	case $set in
	d1g)
		net_up 1gbit
		for mem in $MEMS; do
			for load in $LOADS; do
				run_case 1gbit 1000000000 "" "$mem" "$load"
			done
		done
		;;
	p05 | p5)
		[ "$set" = p05 ] && d=0.5 || d=5
		net_up 1gbit
		for load in $LOADS; do
			[ "$load" = seq200 ] && continue
			run_case 1gbit 1000000000 "$d" 1G "$load"
		done
		;;
	d10g)
		net_up 10gbit
		for load in $LOADS; do
			[ "$load" = seq200 ] && continue
			run_case 10gbit 10000000000 "" 1G "$load"
		done
		;;
	*) fail "unknown set '$set' (d1g p05 p5 d10g)" ;;
	esac
	net_down
done
echo "bench-postcopy: done in $(($(date +%s) - start)) s; $TXT_OUT, $JSON_OUT" >&2
cat "$TXT_OUT"
