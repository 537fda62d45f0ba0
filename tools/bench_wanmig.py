#!/usr/bin/env python3
"""Migrations at distance: each mode and workload over the test WAN at several RTTs.

For each one-way delay (DELAYS, ms; RTT = 2 x delay) the test network is a WAN
(tools/testnet.sh up --delay-ms D --rate RATE: a packet-level delay line, so TCP
and the switch-over handshake see the real RTT). For each workload and mode a
source VM starts in NAME-a, an incoming in NAME-b, and `hybridmig migrate --json`
moves it; the guest must verify ok on the destination. Written: one row per
run with the report's figures (total, downtime and its prediction, bandwidth,
post-copy faults, blocked RTTs, the guest's work rate before and during
post-copy) to build/bench/wanmig.json and a table to build/bench/wanmig.md.

Environment (all optional):
  O          build dir (default build); HM the binary (default $O/hybridmig)
  DELAYS     one-way delays in ms (default "10 50 75": RTT 20, 100, 150 ms)
  RATE       link cap (default 1gbit)
  MODES      (default "precopy postcopy hybrid auto")
  WORKLOADS  name=guest-spec;... (default idle256 and zipf: see below)
  MEM        guest RAM (default 1G)
  TIMEOUT    migrate --timeout in s (default 120)
  LIMIT      --downtime-limit in ms (default 300)
  TAG        a label stored with the rows (to compare two binaries)
  OUT_NAME   file name stem under build/bench (default wanmig)
Needs root, KVM, userfaultfd, openssl. Every process is bounded by a timeout
and stopped on exit; the test network is taken down.
"""
import json, os, re, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
O = os.environ.get("O", "build")
OUT = O if os.path.isabs(O) else os.path.join(ROOT, O)
HM = os.environ.get("HM", os.path.join(OUT, "hybridmig"))
NET = "hmwm%d" % (os.getpid() % 10000)
TESTNET = ["bash", os.path.join(ROOT, "tools", "testnet.sh")]
DELAYS = os.environ.get("DELAYS", "10 50 75").split()
RATE = os.environ.get("RATE", "1gbit")
MODES = os.environ.get("MODES", "precopy postcopy hybrid auto").split()
MEM = os.environ.get("MEM", "1G")
TIMEOUT = int(os.environ.get("TIMEOUT", "120"))
LIMIT = int(os.environ.get("LIMIT", "300"))
TAG = os.environ.get("TAG", "")
DEFAULT_WORKLOADS = ("idle256=dirtier:wss=256M,rate=1;"
                     "zipf=dirtier:wss=256M,rate=20000,pattern=zipf;"
                     "seq=dirtier:wss=256M,rate=20000")
WORKLOADS = [w.split("=", 1) for w in os.environ.get("WORKLOADS", DEFAULT_WORKLOADS).split(";") if w]
KEYS = ("total_ms", "downtime_ms", "predicted_downtime_ms", "rtt_ms", "bandwidth_mbps", "rounds",
        "send_buffer_bytes", "remote_faults", "remote_faults_per_s", "vcpu_blocked_rtts",
        "pages_requested", "pages_prefetched", "pages_pushed", "last_page_ms",
        "work_units_per_s_before", "work_units_per_s_postcopy", "failure", "mode")
procs = []


def sh(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout.strip()


def ctl(sock, *args, timeout=10):
    r = subprocess.run([HM] + list(args) + ["--control", sock, "--json"], capture_output=True,
                       text=True, timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def wait_for(pred, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def spawn(ns, args, log):
    p = subprocess.Popen(["ip", "netns", "exec", ns, HM] + args, stdout=log, stderr=log,
                         start_new_session=True)
    procs.append(p)
    return p


def stop_all():
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    procs.clear()


def one(tmp, delay, wl, spec, mode, port, tls):
    a, b = sh(TESTNET + ["addr", NET, "a"]), sh(TESTNET + ["addr", NET, "b"])
    ssock, dsock = os.path.join(tmp, "s.sock"), os.path.join(tmp, "d.sock")
    for s in (ssock, dsock):
        if os.path.exists(s):
            os.unlink(s)
    with open(os.path.join(tmp, "d.log"), "w") as dl, open(os.path.join(tmp, "s.log"), "w") as sl:
        d = spawn(NET + "-b", ["incoming", "--tls-dir", tls + "/dst", "--listen", "%s:%d" % (b, port),
                               "--control", dsock], dl)
        s = spawn(NET + "-a", ["run", "--mem", MEM, "--guest", spec, "--control", ssock], sl)
        if not wait_for(lambda: ctl(ssock, "status").get("state") == "running", 30):
            raise SystemExit("source VM did not start: " + open(sl.name).read())
        time.sleep(3)  # the guest reaches its working set and rate
        m = subprocess.run(["ip", "netns", "exec", NET + "-a", HM, "migrate", "--mode", mode,
                            "--tls-dir", tls + "/src", "--control", ssock, "--to", "%s:%d" % (b, port),
                            "--downtime-limit", str(LIMIT), "--timeout", str(TIMEOUT), "--json"],
                           capture_output=True, text=True, timeout=TIMEOUT * 3 + 120)
        final = {}
        for line in reversed(m.stdout.splitlines()):
            if '"event":"done"' in line:
                final = json.loads(line)
                break
        row = {"tag": TAG, "rtt_nominal_ms": 2 * float(delay), "workload": wl, "spec": spec,
               "requested": mode, "exit": m.returncode}
        row.update({k: final.get(k) for k in KEYS})
        if m.returncode == 0 and wait_for(lambda: ctl(dsock, "status").get("state") == "running", 30):
            row["verify"] = ctl(dsock, "verify", timeout=60).get("verify")
            ctl(dsock, "stop")
        else:
            row["verify"] = ctl(ssock, "verify", timeout=60).get("verify")
            ctl(ssock, "stop")
        wait_for(lambda: all(p.poll() is not None for p in procs), 60)
        stop_all()
    return row


def fmt(v, f="%.1f"):
    return "-" if v is None else (f % v if isinstance(v, (int, float)) else str(v))


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench_wanmig.py: needs root")
    tmp = tempfile.mkdtemp(prefix="hm-wanmig.")
    tls = os.path.join(tmp, "pki")
    sh(["sh", os.path.join(ROOT, "tools", "mkcerts.sh"), "--loopback", tls, "src", "dst"])
    rows, port = [], 20000 + os.getpid() % 10000
    try:
        for d in DELAYS:
            sh(TESTNET + ["up", NET, "--delay-ms", d, "--rate", RATE])
            for wl, spec in WORKLOADS:
                for mode in MODES:
                    port += 1
                    r = one(tmp, d, wl, spec, mode, port, tls)
                    rows.append(r)
                    print("RTT %5.0f  %-8s %-8s exit %d verify %-4s total %8s ms  down %7s (pred %7s)  "
                          "faults %6s  blocked %6s RTTs  work %s -> %s" % (
                              r["rtt_nominal_ms"], wl, mode, r["exit"], r.get("verify"),
                              fmt(r["total_ms"], "%.0f"), fmt(r["downtime_ms"]),
                              fmt(r["predicted_downtime_ms"]), fmt(r["remote_faults"], "%d"),
                              fmt(r["vcpu_blocked_rtts"]), fmt(r["work_units_per_s_before"], "%.0f"),
                              fmt(r["work_units_per_s_postcopy"], "%.0f")), flush=True)
            sh(TESTNET + ["down", NET])
    finally:
        stop_all()
        subprocess.run(TESTNET + ["down", NET], capture_output=True)
    stem = os.environ.get("OUT_NAME", "wanmig")
    os.makedirs(os.path.join(OUT, "bench"), exist_ok=True)
    with open(os.path.join(OUT, "bench", stem + ".json"), "w") as f:
        json.dump({"rate": RATE, "mem": MEM, "limit_ms": LIMIT, "rows": rows,
                   "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=1)
    lines = ["# Migrations over the test WAN (%s, guest %s, downtime limit %d ms)" % (RATE, MEM, LIMIT), "",
             "| RTT | workload | mode | ran | exit | verify | total ms | downtime ms | predicted | faults | faults/s | blocked RTTs | prefetched | work/s before | during post-copy |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %.0f | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["rtt_nominal_ms"], r["workload"], r["requested"], r.get("mode") or "-", r["exit"],
            r.get("verify"), fmt(r["total_ms"], "%.0f"), fmt(r["downtime_ms"]),
            fmt(r["predicted_downtime_ms"]), fmt(r["remote_faults"], "%d"),
            fmt(r["remote_faults_per_s"]), fmt(r["vcpu_blocked_rtts"]), fmt(r["pages_prefetched"], "%d"),
            fmt(r["work_units_per_s_before"], "%.0f"), fmt(r["work_units_per_s_postcopy"], "%.0f")))
    with open(os.path.join(OUT, "bench", stem + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


main()
