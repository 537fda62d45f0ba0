#!/usr/bin/env python3
"""The migration link over the test WAN: kernel autotuning against sized buffers.

For each one-way delay (10, 50, 75 ms: RTT 20, 100, 150 ms) on a 1 Gbit/s
WAN (tools/testnet.sh up --delay-ms D --rate 1gbit: a packet-level delay line,
so TCP sees the real path), run build/tools/bench_wan: the migration's link
(TLS 1.3, hellos, src/sockbuf.c's sizing) carrying page batch frames for
SECONDS, once with --socket-buffer kernel (what hybridmig did before: the
host's autotuning, here net.ipv4.tcp_wmem max 4 MiB) and once with the
default (buffers sized for the link). Writes build/bench/wan.md and
wan.json; prints the table.

Environment: O (build dir), DELAYS ("10 50 75"), RATE (1gbit), SECONDS (10).
Needs root (network namespaces), /dev/net/tun, openssl (tools/mkcerts.sh).
No KVM. Bounded: every process has a timeout; the net is taken down on exit.
"""
import json, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
O = os.environ.get("O", "build")
OUT = O if os.path.isabs(O) else os.path.join(ROOT, O)
BENCH = os.path.join(OUT, "tools", "bench_wan")
NET = "hmbw%d" % (os.getpid() % 10000)
DELAYS = os.environ.get("DELAYS", "10 50 75").split()
RATE = os.environ.get("RATE", "1gbit")
SECONDS = int(os.environ.get("SECONDS", "10"))
TESTNET = ["bash", os.path.join(ROOT, "tools", "testnet.sh")]


def sh(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout.strip()


def one(delay, sockbuf, certs, port):
    sh(TESTNET + ["up", NET, "--delay-ms", delay, "--rate", RATE])
    b = sh(TESTNET + ["addr", NET, "b"])
    recv = subprocess.Popen(["ip", "netns", "exec", NET + "-b", BENCH, "recv", "--listen",
                             "%s:%d" % (b, port), "--tls-dir", os.path.join(certs, "dst"),
                             "--socket-buffer", sockbuf],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    early = []
    try:
        for line in recv.stdout:
            if line.strip() == "ready":
                break
            early.append(line)
        else:
            raise SystemExit("bench_wan receiver did not start:\n" + "".join(early))
        send = subprocess.run(["ip", "netns", "exec", NET + "-a", BENCH, "send", "--to",
                               "%s:%d" % (b, port), "--tls-dir", os.path.join(certs, "src"),
                               "--seconds", str(SECONDS), "--socket-buffer", sockbuf],
                              capture_output=True, text=True, timeout=SECONDS + 60)
        rout, _ = recv.communicate(timeout=30)
        rout = "".join(early) + rout
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
    stats = sh(TESTNET + ["stats", NET])
    sh(TESTNET + ["down", NET])
    m = re.search(r"recv: (\d+) bytes in ([\d.]+) s, (\d+) Mbit/s, second half (\d+) Mbit/s", rout)
    r = re.search(r"rtt ([\d.]+) ms", send.stdout)
    if send.returncode or not m or not r:
        raise SystemExit("bench_wan failed at %s ms, %s:\n%s\n%s%s" % (delay, sockbuf, send.stdout, send.stderr, rout))
    logs = [l.split("] ", 1)[-1] for l in (send.stderr + rout).splitlines() if "buffer" in l]
    drops = sum(int(x) for x in re.findall(r"dropped (\d+) at the queue", stats))
    return {"delay_ms": float(delay), "rtt_ms": float(r.group(1)), "socket_buffer": sockbuf,
            "bytes": int(m.group(1)), "seconds": float(m.group(2)), "mbit_s": int(m.group(3)),
            "mbit_s_second_half": int(m.group(4)), "queue_drops": drops, "sizing": logs}


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench_wan.py: needs root (network namespaces)")
    certs = os.path.join(OUT, "bench", "certs")
    sh(["sh", os.path.join(ROOT, "tools", "mkcerts.sh"), certs, "src", "dst"])
    host = {k: open("/proc/sys/net/" + k.replace(".", "/")).read().split()
            for k in ("ipv4.tcp_wmem", "ipv4.tcp_rmem", "core.wmem_max", "core.rmem_max")}
    rows = []
    try:
        for i, d in enumerate(DELAYS):
            for sb in ("kernel", "64M"):
                rows.append(one(d, sb, certs, 47300 + 2 * i + (sb != "kernel")))
                print("%(rtt_ms)7.1f ms  %(socket_buffer)-7s %(mbit_s)5d Mbit/s, second half %(mbit_s_second_half)5d" % rows[-1], flush=True)
    finally:
        subprocess.run(TESTNET + ["down", NET], capture_output=True)
    res = {"rate": RATE, "seconds": SECONDS, "host": host, "rows": rows,
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(os.path.join(OUT, "bench"), exist_ok=True)
    with open(os.path.join(OUT, "bench", "wan.json"), "w") as f:
        json.dump(res, f, indent=1)
    lines = ["# The migration link over the test WAN (%s, %d s per run)" % (RATE, SECONDS), "",
             "TLS 1.3, page batch frames on the bulk channel (tools/bench_wan.c); the WAN is",
             "tools/testnet.sh up --delay-ms D --rate %s (packet-level delay line)." % RATE,
             "Host: net.ipv4.tcp_wmem %s, tcp_rmem %s, net.core.wmem_max %s, rmem_max %s." % (
                 " ".join(host["ipv4.tcp_wmem"]), " ".join(host["ipv4.tcp_rmem"]),
                 host["core.wmem_max"][0], host["core.rmem_max"][0]), "",
             "| RTT ms | socket buffers | Mbit/s | second half, Mbit/s | queue drops |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %.1f | %s | %d | %d | %d |" % (r["rtt_ms"], "kernel autotuning" if r["socket_buffer"] == "kernel" else "sized (default)", r["mbit_s"], r["mbit_s_second_half"], r["queue_drops"]))
    lines += ["", "Sizing, as logged:"] + sorted({"- " + l for r in rows for l in r["sizing"]})
    with open(os.path.join(OUT, "bench", "wan.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


main()
