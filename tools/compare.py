#!/usr/bin/env python3
"""make compare: QEMU and hybridmig migrating the same workload over the same link cap.

usage: compare.py [--accel kvm|tcg] [--caps 1gbit,10gbit] [--rates 0,50,150]
                  [--wss 1G] [--mem 2G] [--pattern random] [--timeout S]
                  [--downtime-limit MS] [--settle S] [--qemu-modes M,...]
                  [--hm-modes M,...] [--hm-tls] [--out DIR]

For each link cap (tools/testnet.sh: two namespaces, a veth pair, tbf each
way) and each guest write rate R (percent of the link, in pages/s after the
dirtier has written its whole working set once: prefill=1), it migrates the
dirtier with QEMU (qemu-system-x86_64, source in NET-a, destination with
-incoming defer in NET-b, driven over QMP: tools/compare_qemu.py) in
pre-copy, post-copy after the first pass and post-copy from the start, and
with hybridmig (tools/compare_hm.py) in each of its modes. Written:
$O/compare/results.json and $O/compare/report.md (both sides per cell and
their ratios: tools/compare_report.py).

--accel kvm (the default) needs /dev/kvm and refuses without it. --accel tcg
runs QEMU under software emulation: a functional check of the harness, whose
figures mean nothing; the hybridmig side still needs KVM and is skipped with
a note without it. Needs root (namespaces), qemu-system-x86_64
(`sh tools/deps.sh qemu-system-x86`), $O/hybridmig and $O/tools/mbimage
(`make compare` builds both). Every process runs under a timeout and is
stopped on exit; the test network and temporary files are removed.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_hm  # noqa: E402
import compare_qemu  # noqa: E402
from compare_env import ROOT, TESTNET, Procs, kvm_usable, sh  # noqa: E402
from compare_report import render  # noqa: E402

O = os.environ.get("O", "build")
OUT = O if os.path.isabs(O) else os.path.join(ROOT, O)


def size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s.upper())
    if not m:
        raise argparse.ArgumentTypeError("a size like 512M or 2G")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def cap_bytes(cap):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(kbit|mbit|gbit)", cap.lower())
    if not m:
        raise SystemExit("compare: cap '%s': give it like 1gbit or 500mbit" % cap)
    return int(float(m.group(1)) * {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[m.group(2)] / 8)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accel", choices=("kvm", "tcg"), default="kvm")
    p.add_argument("--caps", default="1gbit,10gbit")
    p.add_argument("--rates", default="0,50,150", help="percent of the link")
    p.add_argument("--wss", type=size, default=size("1G"))
    p.add_argument("--mem", type=size, default=size("2G"))
    p.add_argument("--pattern", choices=("seq", "random", "zipf"), default="random")
    p.add_argument("--timeout", type=int, default=120, help="seconds per migration")
    p.add_argument("--downtime-limit", dest="limit_ms", type=int, default=300)
    p.add_argument("--settle", dest="settle_s", type=float, default=2.0)
    p.add_argument("--prefill-timeout", dest="prefill_s", type=int, default=120)
    p.add_argument("--qemu-modes", default=",".join(compare_qemu.MODES))
    p.add_argument("--hm-modes", default=",".join(compare_hm.MODES))
    p.add_argument("--hm-tls", action="store_true", help="hybridmig over TLS (QEMU: plain TCP)")
    p.add_argument("--out", default=os.path.join(OUT, "compare"))
    a = p.parse_args()
    for m in a.qemu_modes.split(","):
        if m not in compare_qemu.MODES:
            p.error("--qemu-modes: '%s' is not one of %s" % (m, ", ".join(compare_qemu.MODES)))
    for m in a.hm_modes.split(","):
        if m not in compare_hm.MODES:
            p.error("--hm-modes: '%s' is not one of %s" % (m, ", ".join(compare_hm.MODES)))
    return a


def preflight(a):
    """Refuse what cannot run; returns why the hybridmig side is skipped, or None."""
    if os.geteuid() != 0:
        raise SystemExit("compare: needs root (network namespaces)")
    kvm, why = kvm_usable()
    if a.accel == "kvm" and not kvm:
        raise SystemExit("compare: %s. QEMU's figures need KVM (-accel kvm). `--accel tcg` runs "
                         "the QEMU side under software emulation as a functional check only "
                         "(figures meaningless)." % why)
    if not shutil.which(compare_qemu.QEMU):
        raise SystemExit("compare: %s is missing (sh tools/deps.sh qemu-system-x86)" % compare_qemu.QEMU)
    for f in (a.hm, a.mbimage):
        if not os.access(f, os.X_OK):
            raise SystemExit("compare: %s is missing (make compare builds it)" % f)
    if not kvm:
        return "%s; hybridmig runs its guests on KVM only" % why
    return None


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%s, %d CPUs, Linux %s" % (model, os.cpu_count(), platform.release())


def make_cell(a, tmp, cap, frac):
    rate = int(round(frac / 100.0 * cap_bytes(cap) / 4096))
    wss = "%dM" % (a.wss >> 20) if a.wss % (1 << 20) == 0 else str(a.wss)
    spec = "dirtier:wss=%s,pattern=%s,prefill=1,%s" % (wss, a.pattern,
                                                       "rate=%d" % rate if rate else "fill=1")
    img = os.path.join(tmp, "dirtier-%s-%d.mb" % (cap, frac))
    info = json.loads(sh([a.mbimage, "--guest", spec, "--mem", str(a.mem), "-o", img]))
    return {"cap": cap, "cap_bytes": cap_bytes(cap), "frac": frac, "rate": rate, "spec": spec,
            "info": info, "rows": []}


def show(cell, r):
    f = lambda k, fmt="%.0f": "-" if r.get(k) is None else fmt % r[k]  # noqa: E731
    print("%-7s R=%3d%%  %-9s %-19s %-10s total %7s ms  down %6s ms  link %7s MB  "
          "post-copy %6s pages/s  verify %s%s" % (
              cell["cap"], cell["frac"], r["side"], r["mode"], r.get("status"), f("total_ms"),
              f("downtime_ms"), "-" if r.get("link_bytes") is None else "%.1f" % (r["link_bytes"] / 1e6),
              f("units_per_s_postcopy"), r.get("verify"),
              "" if r.get("status") == "completed" else "  (%s)" % r.get("error")), flush=True)


def run(a, skip, tmp, procs, cells):
    port = 21000 + os.getpid() % 5000
    for cap in a.caps.split(","):
        sh(TESTNET + ["up", a.net, "--rate", cap])
        a.addr_b, a.cap_bytes = sh(TESTNET + ["addr", a.net, "b"]), cap_bytes(cap)
        for frac in (int(x) for x in a.rates.split(",")):
            cell = make_cell(a, tmp, cap, frac)
            cells.append(cell)
            sides = [(compare_qemu, m) for m in a.qemu_modes.split(",")]
            sides += [] if skip else [(compare_hm, m) for m in a.hm_modes.split(",")]
            for mod, mode in sides:
                port += 1
                r = mod.run_cell(a, cell, mode, procs, tmp, port)
                cell["rows"].append(r)
                show(cell, r)
        sh(TESTNET + ["down", a.net])


def version(argv):
    try:
        return sh(argv).splitlines()[0]
    except Exception:  # noqa: BLE001 (only a label)
        return "?"


def main():
    a = parse_args()
    a.hm = os.environ.get("HM", os.path.join(OUT, "hybridmig"))
    a.mbimage = os.path.join(OUT, "tools", "mbimage")
    skip = preflight(a)
    if skip:
        print("compare: hybridmig side skipped: %s" % skip, flush=True)
    a.net, a.pki = "hmcmp%d" % (os.getpid() % 10000), None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp, procs, cells = tempfile.mkdtemp(prefix="hm-compare."), Procs(), []
    try:
        if a.hm_tls and not skip:
            a.pki = os.path.join(tmp, "pki")
            sh(["sh", os.path.join(ROOT, "tools", "mkcerts.sh"), "--loopback", a.pki, "src", "dst"])
        run(a, skip, tmp, procs, cells)
    finally:
        procs.stop_all()
        subprocess.run(TESTNET + ["down", a.net], capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
    res = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": machine(),
           "accel": a.accel, "qemu_version": version([compare_qemu.QEMU, "--version"]),
           "hybridmig_version": version([a.hm, "--version"]), "hybridmig_skipped": skip,
           "wss": a.wss, "mem": a.mem, "pattern": a.pattern, "limit_ms": a.limit_ms,
           "timeout_s": a.timeout, "settle_s": a.settle_s, "hm_tls": a.hm_tls,
           "verify_pages": compare_qemu.VERIFY_PAGES, "cells": cells}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(render(res))
    print("compare: %s/report.md and results.json" % a.out)


if __name__ == "__main__":
    main()
