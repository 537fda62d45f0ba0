#!/usr/bin/env python3
"""make bench: every hybridmig benchmark in one harness.

    python3 tools/bench [--sets "vmm mig postcopy wan policy"] [--quick] [--out DIR]
    python3 tools/bench --list            the matrix, without running anything
    python3 tools/bench --replot DIR      report.md and every PNG again from
                                          DIR/results.json and DIR/records/

Sets (SETS, default all five):
  vmm       the VMM: guest write rate against a host thread, the I/O device,
            time to the first progress report (set_vmm.py), what the eBPF
            probe costs the guest (probe_cost.py)
  mig       pre-copy over the two-namespace test network: link x RAM x workload
  postcopy  post-copy and hybrid against the post-copy issue's targets, with
            the local userfaultfd floor (tools/bench_uffd)
  wan       RTT x workload x mode over the test WAN (testnet.sh --delay-ms)
  policy    issue 8: guests x links, every fixed mode and auto in each cell; auto's
            regret against the best fixed mode, KubeVirt's stall rule replayed
            over the recordings, the model's prediction error (regret.py)
Each migration: `incoming` in NET-b, `run` in NET-a, a warm-up, `migrate --json
--record FILE`, the destination's fault-latency histogram scraped from its
/metrics, verify on the destination (on the source if it did not move), stop.

Writes OUT (default $O/bench): results.json (every figure), report.md (tables
and the plots), records/ID.jsonl (each migration's --record file), PNGs
(timeline-ID, bars-GROUP, latency-ID) and gnuplot/ (their data and scripts).

QUICK=1 (--quick) shrinks every set to a few cells with 256 MiB guests and
short timeouts. Bounds: every process has a timeout, every set a watchdog
(WD_*); on any exit (the end, an error, a signal, a watchdog) the processes
started here are killed by process group and the test network is taken down.
Needs root (network namespaces), /dev/kvm, userfaultfd, openssl, iproute2 + tc,
and gnuplot for the plots; without a usable /dev/kvm it says skip and exits 0.
"""
import sys

sys.dont_write_bytecode = True  # noqa: E402 (no __pycache__ in the source tree)

import argparse  # noqa: E402
import glob  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import cells  # noqa: E402
import derive  # noqa: E402
import floor  # noqa: E402
import migrate  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
import set_vmm  # noqa: E402
import settings  # noqa: E402


def parse():
    ap = argparse.ArgumentParser(prog="tools/bench", description=__doc__.split("\n\n")[0],
                                 epilog="environment:\n  SETS, QUICK=1, O (build dir), HM (binary), "
                                        "OUT (results dir)\n" + settings.describe(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=os.environ.get("SETS") or " ".join(settings.DEFAULT_SETS),
                    help="which sets, in order (default: env SETS, else %(default)s; policy only when named)")
    ap.add_argument("--quick", action="store_true",
                    default=os.environ.get("QUICK", "0") not in ("", "0"),
                    help="a few small cells, short timeouts (env QUICK=1)")
    ap.add_argument("--out", help="results directory (default $O/bench)")
    ap.add_argument("--list", action="store_true", help="print the matrix and exit")
    ap.add_argument("--replot", metavar="DIR", help="rebuild DIR/report.md and its PNGs only")
    a = ap.parse_args()
    a.sets = a.sets.replace(",", " ").split()
    bad = [x for x in a.sets if x not in settings.ALL_SETS]
    if bad:
        ap.error("unknown set %s (sets: %s)" % (", ".join(bad), " ".join(settings.ALL_SETS)))
    return a


def list_matrix(s):
    if "vmm" in s.sets:
        print("vmm       write rate: dirtier wss=%s in %s vs bench_hostwrite, %s runs" %
              (s.str("VMM_WSS"), s.str("VMM_MEM"), s.str("REPS")))
        print("vmm       I/O device at %s MB/s; first progress of a %s guest" %
              (", ".join(s.words("VMM_IO")), s.str("VMM_FIRST_MEM")))
        print("vmm       probe cost: random writer wss=%s in %s, %s rounds of none/harvest/bpf" %
              (s.str("VMM_PROBE_WSS"), s.str("VMM_PROBE_MEM"), s.str("REPS")))
    mx = cells.matrix(s, s.sets)
    for c in mx:
        print(cells.describe(c))
    print("%d migrations" % len(mx))


def kvm_usable():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


def preflight(s):
    if not os.access(s.hm, os.X_OK):
        raise SystemExit("bench: %s not built (make)" % s.hm)
    if not kvm_usable():
        print("bench: skip: /dev/kvm is not usable")
        sys.exit(0)
    if set(s.sets) - {"vmm"}:
        if os.geteuid() != 0:
            raise SystemExit("bench: needs root (network namespaces)")
        for tool in ("ip", "tc", "openssl"):
            if not shutil.which(tool):
                raise SystemExit("bench: needs %s" % tool)
    if not shutil.which("gnuplot"):
        print("bench: warning: no gnuplot (Debian: gnuplot-nox): the report will have no plots")


def wait_quiet(s):
    """Test runs share the cores: wait (at most BUSY_WAIT_S) until none runs."""
    end = time.monotonic() + s.int("BUSY_WAIT_S")
    found = procs.busy(settings.BUSY_PAT)
    if found:
        print("bench: waiting (at most %s s) for: %s" % (s.str("BUSY_WAIT_S"), "; ".join(found[:3])))
    while found and time.monotonic() < end:
        time.sleep(5)
        found = procs.busy(settings.BUSY_PAT)
    if found:
        print("bench: warning: still busy; measuring anyway (figures skewed)")


def clean_out(out):
    """What an earlier run of this harness left in OUT (other files stay)."""
    old = [os.path.join(out, p) for p in ("results.json", "report.md")]
    for kind in ("timeline", "bars", "latency"):
        old += glob.glob(os.path.join(out, kind + "-*.png"))
    for p in old:
        if os.path.isfile(p):
            os.unlink(p)
    for d in ("records", "gnuplot"):
        shutil.rmtree(os.path.join(out, d), ignore_errors=True)
    os.makedirs(out, exist_ok=True)


def meta(s):
    try:
        ver = procs.capture([s.hm, "--version"], 10).splitlines()[0]
    except (RuntimeError, OSError, IndexError, subprocess.TimeoutExpired):
        ver = "hybridmig ?"
    return {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "kernel": os.uname().release,
            "cpus": os.cpu_count(), "host_load1": procs.load1(), "hybridmig_version": ver,
            "sets": s.sets, "settings": s.as_dict(), "aborted": []}


def say_row(n, total, r):
    m = r.get("report") or {}
    if r.get("migrated"):
        print("bench: [%d/%d] %s: %s, total %.2f s, downtime %s ms, faults %s, verify %s" % (
            n, total, r["id"], derive.result(r), (m.get("total_ms") or 0) / 1e3, m.get("downtime_ms"),
            m.get("remote_faults"), r.get("verify")), flush=True)
    else:
        print("bench: [%d/%d] %s: %s (rc %s): %s; verify on the %s: %s" % (
            n, total, r["id"], derive.result(r), r.get("migrate_rc"), r.get("error"), r.get("verify_on"),
            r.get("verify")), flush=True)


def run_set(s, st, res, lab, tmp):
    if st == "vmm":
        res["vmm"] = set_vmm.run(s, tmp)
        failed = [k for k, v in res["vmm"].items() if isinstance(v, dict) and "error" in v]
        if failed:
            raise RuntimeError("vmm: %s failed" % ", ".join(failed))
        return
    if st in ("postcopy", "wan") and res["floor"] is None:
        res["floor"] = floor.measure(s, tmp)
        print("bench: floor p50 %s us, p99 %s us %s" % (res["floor"].get("p50_us"), res["floor"].get("p99_us"),
                                                       res["floor"].get("error", "")), flush=True)
    mx = cells.matrix(s, [st])
    for i, c in enumerate(mx, 1):
        lab.net.up(cells.net_key(c))
        row = derive.derive(migrate.run_cell(lab, c, s.out), res["floor"])
        res["runs"].append(row)
        report.save(s.out, res)
        say_row(i, len(mx), row)


def run(s):
    procs.install_signals()
    tmp = tempfile.mkdtemp(prefix="hm-bench.")
    clean_out(s.out)
    res = {"schema": 1, "meta": meta(s), "vmm": None, "floor": None, "runs": []}
    lab, rc = None, 0
    try:
        wait_quiet(s)
        for st in s.sets:
            print("bench: set %s" % st, flush=True)
            try:
                if st != "vmm" and lab is None:
                    lab = migrate.Lab(s, tmp, s.str("TLS") != "0")
                signal.alarm(s.int("WD_" + st.upper()))
                run_set(s, st, res, lab, tmp)
            except procs.Watchdog:
                res["meta"]["aborted"].append("set %s: watchdog after %s s" % (st, s.str("WD_" + st.upper())))
                rc = 1
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                res["meta"]["aborted"].append("set %s: %s" % (st, e))
                rc = 1
            finally:
                signal.alarm(0)
                procs.stop_all()
                if lab:
                    lab.net.down()
            report.save(s.out, res)
    except procs.Interrupted as e:
        res["meta"]["aborted"].append("interrupted: %s" % e)
        rc = 130
    finally:
        procs.quiet_signals()
        procs.stop_all()
        if lab:
            lab.net.down()
        shutil.rmtree(tmp, ignore_errors=True)
        res["meta"]["ended_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        report.save(s.out, res)
        report.build(s.out)
        print("bench: %s" % os.path.join(s.out, "report.md"))
    for a in res["meta"]["aborted"]:
        print("bench: aborted: %s" % a)
    return rc


def main():
    a = parse()
    if a.replot:
        report.build(a.replot)
        print("bench: %s" % os.path.join(a.replot, "report.md"))
        return 0
    s = settings.Settings(a.quick, a.sets)
    if a.out:
        s.out = a.out
    if a.list:
        list_matrix(s)
        return 0
    preflight(s)
    return run(s)


if __name__ == "__main__":
    sys.exit(main())
