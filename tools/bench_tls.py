#!/usr/bin/env python3
"""TLS against plain TCP, in one run, on real migrations (make bench-tls).

Cells: link {uncapped veth, tc tbf 1 Gbit/s} x security {plain (--insecure),
TLS 1.3} x workload:
  stream    a 2 GiB guest whose 1 GiB working set was written once, then
            idle (dirtier fill=1), moved by pre-copy: the stream's throughput
            and the CPU it costs;
  postcopy  a 1 GiB guest writing 256 MiB zipf at 20k pages/s, moved by
            post-copy: fault latency p50/p99 while the pusher fills the link.
Each cell runs --runs times (default 3); the median is reported. Output:
build/bench-tls.txt (a table) and build/bench-tls.json (every run).
Benchmarks measure; nothing here asserts a time. Run it alone: other work on
these 2 cores changes the figures (the script prints what else runs).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
O = os.environ.get("O", "build")
HM = os.path.join(ROOT, O, "hybridmig")
NET = "hmbtls"


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, cwd=ROOT, **kw)


def testnet(*args):
    return sh("bash", "tools/testnet.sh", *args, stdout=subprocess.PIPE, text=True).stdout.strip()


def status(sock):
    r = sh(HM, "status", "--control", sock, "--json", check=False,
           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {}


def cpu_seconds(pid):
    """user+sys CPU seconds of a process and its threads, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(tmp, sec, workload, pki):
    b_addr = testnet("addr", NET, "b")
    dst_tls = ["--insecure"] if sec == "plain" else ["--tls-dir", pki + "/dst"]
    src_tls = ["--insecure"] if sec == "plain" else ["--tls-dir", pki + "/src"]
    if workload == "stream":
        guest = ["--mem", "2G", "--guest", "dirtier:wss=1G,fill=1"]
        mode = "precopy"
    else:
        guest = ["--mem", "1G", "--guest", "dirtier:wss=256M,rate=20000,pattern=zipf"]
        mode = "postcopy"
    ssock, dsock = os.path.join(tmp, "s.sock"), os.path.join(tmp, "d.sock")
    dst = subprocess.Popen(["ip", "netns", "exec", NET + "-b", HM, "incoming", *dst_tls,
                            "--listen", b_addr + ":7700", "--control", dsock],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    src = subprocess.Popen(["ip", "netns", "exec", NET + "-a", HM, "run", *guest,
                            "--control", ssock],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            st = status(ssock)
            if workload == "stream" and st.get("work_units", 0) >= 262144:
                break
            if workload == "postcopy" and st.get("uptime_s", 0) >= 3:
                break
            time.sleep(0.5)
        cpu0 = {"src": cpu_seconds(src.pid), "dst": cpu_seconds(dst.pid)}
        r = sh("ip", "netns", "exec", NET + "-a", "timeout", "300", HM, "migrate", *src_tls,
               "--mode", mode, "--control", ssock, "--to", b_addr + ":7700", "--json",
               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
        cpu1 = {"src": cpu_seconds(src.pid) if src.poll() is None else None,
                "dst": cpu_seconds(dst.pid)}
        rep = json.loads(r.stdout.strip().splitlines()[-1])
        rep["cpu_s_src"] = None if cpu1["src"] is None else cpu1["src"] - cpu0["src"]
        rep["cpu_s_dst"] = cpu1["dst"] - cpu0["dst"]
        time.sleep(1)
        v = sh(HM, "verify", "--control", dsock, "--json", check=False,
               stdout=subprocess.PIPE, text=True).stdout
        rep["verify"] = json.loads(v).get("verify") if v.strip() else None
        sh(HM, "stop", "--control", dsock, check=False,
           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return rep
    finally:
        for p in (src, dst):
            if p.poll() is None:
                p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    others = sh("pgrep", "-a", "hybridmig|qemu|fuzz", check=False,
                stdout=subprocess.PIPE, text=True).stdout.strip()
    print("other processes at the start:", others or "none")
    results = []
    with tempfile.TemporaryDirectory(prefix="hm-btls.") as tmp:
        pki = os.path.join(tmp, "pki")
        sh("sh", "tools/mkcerts.sh", "--loopback", pki, "src", "dst", stdout=subprocess.DEVNULL)
        try:
            for link in ("uncapped", "1gbit"):
                testnet("down", NET)
                testnet("up", NET, *([] if link == "uncapped" else ["--rate", "1gbit"]))
                for workload in ("stream", "postcopy"):
                    for run in range(args.runs):
                        for sec in ("plain", "tls"):  # interleaved: drift hits both
                            rep = one_run(tmp, sec, workload, pki)
                            rep.update(link=link, sec=sec, workload=workload, run=run)
                            results.append(rep)
                            print("%-8s %-8s %-5s run %d: %.2f s, %.0f Mbit/s, p50 %s us, "
                                  "p99 %s us, verify %s" %
                                  (link, workload, sec, run, rep["total_ms"] / 1e3,
                                   rep["bytes_wire"] * 8 / rep["total_ms"] / 1e3,
                                   rep.get("fault_latency_p50_us"),
                                   rep.get("fault_latency_p99_us"), rep["verify"]))
        finally:
            testnet("down", NET)
    os.makedirs(os.path.join(ROOT, O), exist_ok=True)
    with open(os.path.join(ROOT, O, "bench-tls.json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = ["# TLS 1.3 against plain TCP (median of %d runs each)" % args.runs, "",
             "| link | workload | security | total s | Mbit/s on the wire | CPU-s src | "
             "CPU-s dst | fault p50 us | fault p99 us |", "|---|---|---|---|---|---|---|---|---|"]
    for link in ("uncapped", "1gbit"):
        for workload in ("stream", "postcopy"):
            for sec in ("plain", "tls"):
                rs = [r for r in results
                      if r["link"] == link and r["workload"] == workload and r["sec"] == sec]
                med = lambda k: statistics.median(r[k] for r in rs if r.get(k) is not None) \
                    if any(r.get(k) is not None for r in rs) else float("nan")
                mbps = statistics.median(r["bytes_wire"] * 8 / r["total_ms"] / 1e3 for r in rs)
                lines.append("| %s | %s | %s | %.2f | %.0f | %.2f | %.2f | %s | %s |" % (
                    link, workload, sec, med("total_ms") / 1e3, mbps, med("cpu_s_src"),
                    med("cpu_s_dst"),
                    "%.0f" % med("fault_latency_p50_us") if workload == "postcopy" else "-",
                    "%.0f" % med("fault_latency_p99_us") if workload == "postcopy" else "-"))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(ROOT, O, "bench-tls.txt"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
