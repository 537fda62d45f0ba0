#!/usr/bin/env python3
"""What the exactly-once switch-over costs (make bench-switch).

The READY/GO handshake adds one round trip to every switch-over; TLS adds
its handshake to the connection set-up (not to the switch) and its cipher
to every byte. This runs the same post-copy and pre-copy migrations on
loopback — a 4 GiB guest, 2 vCPUs, writing 256 MiB at 20000 pages/s — with
one binary or two (--base OLD_BINARY: e.g. one built from the commit before
the handshake, which takes neither TLS flags nor GO) and reports the median
downtime, source pause and guest-seen pause of --runs runs (default 5) into
build/bench-switch.txt. Nothing here asserts a time.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
O = os.environ.get("O", "build")


def status(hm, sock):
    r = subprocess.run([hm, "status", "--control", sock, "--json"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {}


def one(hm, tmp, mode, tls, port, legacy):
    pki = os.path.join(tmp, "pki")
    dflags = [] if legacy else (["--tls-dir", pki + "/dst"] if tls else ["--insecure"])
    sflags = [] if legacy else (["--tls-dir", pki + "/src"] if tls else ["--insecure"])
    ss, ds = os.path.join(tmp, "s%d" % port), os.path.join(tmp, "d%d" % port)
    dst = subprocess.Popen([hm, "incoming", *dflags, "--listen", "127.0.0.1:%d" % port,
                            "--control", ds], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    src = subprocess.Popen([hm, "run", "--mem", "4G", "--vcpus", "2", "--guest",
                            "dirtier:wss=256M,rate=20000", "--control", ss],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if status(hm, ss).get("uptime_s", 0) >= 2:
                break
            time.sleep(0.1)
        r = subprocess.run([hm, "migrate", *sflags, "--mode", mode, "--control", ss, "--to",
                            "127.0.0.1:%d" % port, "--json", "--bandwidth", "1gbit"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rep = json.loads(r.stdout.strip().splitlines()[-1])
        subprocess.run([hm, "stop", "--control", ds], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return rep
    finally:
        for p in (src, dst):
            if p.poll() is None:
                p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", help="an older hybridmig binary (no TLS flags, no GO)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cur = os.path.join(ROOT, O, "hybridmig")
    others = subprocess.run(["pgrep", "-a", "hybridmig|fuzz|qemu"], stdout=subprocess.PIPE,
                            text=True).stdout.strip()
    print("other processes at the start:", others or "none")
    variants = [("now, plain TCP", cur, False, False), ("now, TLS 1.3", cur, True, False)]
    if args.base:
        variants.insert(0, ("before (no handshake, plain)", args.base, False, True))
    rows = []
    port = 23000 + os.getpid() % 5000
    with tempfile.TemporaryDirectory(prefix="hm-bsw.") as tmp:
        subprocess.run(["sh", "tools/mkcerts.sh", "--loopback", os.path.join(tmp, "pki"),
                        "src", "dst"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        for mode in ("postcopy", "precopy"):
            res = {v[0]: [] for v in variants}
            for run in range(args.runs):
                for name, hm, tls, legacy in variants:  # interleaved: drift hits all
                    port += 1
                    rep = one(hm, tmp, mode, tls, port, legacy)
                    res[name].append(rep)
                    print("%-9s %-30s run %d: downtime %.3f ms, source pause %.3f ms, "
                          "guest pause %.3f ms" % (mode, name, run, rep["downtime_ms"],
                                                   rep["source_pause_ms"],
                                                   rep["guest_pause_ms"]))
            for name, *_ in variants:
                med = lambda k: statistics.median(r[k] for r in res[name])
                rows.append("| %s | %s | %.3f | %.3f | %.3f | %.3f |" % (
                    mode, name, med("downtime_ms"), med("source_pause_ms"),
                    med("guest_pause_ms"), med("total_ms") / 1e3))
    text = ("# Switch-over cost: median of %d runs, loopback, 4 GiB guest, 2 vCPUs, "
            "256 MiB written at 20k pages/s, --bandwidth 1gbit\n\n"
            "| mode | build | downtime ms | source pause ms | guest pause ms | total s |\n"
            "|---|---|---|---|---|---|\n" % args.runs) + "\n".join(rows) + "\n"
    os.makedirs(os.path.join(ROOT, O), exist_ok=True)
    with open(os.path.join(ROOT, O, "bench-switch.txt"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
