"""The vmm set: how fast the VMM runs its guests (no network, unix sockets only).

 1. write rate of the dirtier (rate=0, pattern=seq, warm VMM_WSS working set in
    VMM_MEM) against one host thread doing the same writes (tools/bench_hostwrite),
    both over the window VMM_WINDOW (t=2..5 s of uptime), so the guest's first
    touch of its working set is left out;
 2. guest work units/s with the I/O device at each of VMM_IO MB/s (wss 64M;
    QUICK: 32M), with the I/O rate achieved and how often the ring was full
    (window t=1..4 s; QUICK: 1..3);
 3. time from starting `hybridmig run` to the first guest progress report of a
    VMM_FIRST_MEM guest: first_progress_ms from its summary, and the wall clock
    seen from outside (the control socket polled until work_units > 0);
 4. what the eBPF probe and dirty tracking cost the guest (probe_cost.py).
Each figure is the median of REPS runs; every VM runs with --seconds 20 as a
bound besides the stop, and is reaped.
"""
import json
import os
import re
import statistics
import subprocess
import time

import probe_cost
import procs
from settings import size_bytes


def _med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class _Vm:
    def __init__(self, s, tmp, name, args, seconds=20):
        self.sock = os.path.join(tmp, name + ".sock")
        self.out, self.log = os.path.join(tmp, name + ".json"), os.path.join(tmp, name + ".log")
        for f in (self.sock, self.out):
            if os.path.exists(f):
                os.unlink(f)
        self.p = procs.spawn([s.hm, "run", "--control", self.sock, "--json", "--seconds", str(seconds)]
                             + args, self.log, out=self.out)

    def up(self):
        if not procs.wait_for(lambda: procs.ctl(self.sock, "status", 2).get("state") == "running"
                              or self.p.poll() is not None, 20):
            raise RuntimeError("VM did not start: " + procs.tail(self.log))
        if self.p.poll() is not None:
            raise RuntimeError("VM exited: " + procs.tail(self.log))

    def sample_at(self, t):
        """The VM's status once its uptime is t s."""
        up = procs.ctl(self.sock, "status", 5).get("uptime_s")
        if up is None:
            raise RuntimeError("status failed: " + procs.tail(self.log))
        time.sleep(max(0.0, t - up))
        st = procs.ctl(self.sock, "status", 5)
        if "uptime_s" not in st:
            raise RuntimeError("status failed: " + procs.tail(self.log))
        return st

    def finish(self):
        """Verify, stop, reap; the summary `run --json` printed."""
        procs.ctl(self.sock, "verify", 30)
        procs.ctl(self.sock, "stop", 5)
        procs.wait_gone(self.p, 5)
        try:
            with open(self.out) as f:
                return json.loads(f.read().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            raise RuntimeError("no summary: " + procs.tail(self.log))


def _window(a, b, key):
    return (b[key] - a[key]) / (b["uptime_s"] - a["uptime_s"])


def write_rate(s, tmp):
    t1, t2 = (float(x) for x in s.words("VMM_WINDOW"))
    wss = s.str("VMM_WSS")
    runs = []
    for _ in range(s.int("REPS")):
        vm = _Vm(s, tmp, "w", ["--mem", s.str("VMM_MEM"), "--vcpus", "1", "--guest",
                               "dirtier:wss=%s,rate=0,pattern=seq,io=0" % wss])
        vm.up()
        a, b = vm.sample_at(t1), vm.sample_at(t2)
        summ = vm.finish()
        host = procs.capture([s.tool("bench_hostwrite"), str(size_bytes(wss)), str(t1), str(t2)],
                             t2 + 30)
        m = re.search(r"pages_per_s=([0-9.]+)", host)
        runs.append({"guest_pages_per_s": _window(a, b, "work_units"), "verify": summ.get("verify"),
                     "host_pages_per_s": float(m.group(1)) if m else None})
    g, h = _med(r["guest_pages_per_s"] for r in runs), _med(r["host_pages_per_s"] for r in runs)
    return {"wss": wss, "mem": s.str("VMM_MEM"), "window_s": [t1, t2], "runs": runs,
            "guest_pages_per_s": g, "host_pages_per_s": h, "guest_over_host": g / h if g and h else None}


def io_rates(s, tmp):
    t1, t2 = (1.0, 3.0) if s.quick else (1.0, 4.0)
    wss = "32M" if s.quick else "64M"
    out = []
    for io in s.words("VMM_IO"):
        runs = []
        for _ in range(s.int("REPS")):
            vm = _Vm(s, tmp, "io", ["--mem", s.str("VMM_MEM"), "--vcpus", "1", "--guest",
                                    "dirtier:wss=%s,rate=0,pattern=seq,io=%s" % (wss, io)])
            vm.up()
            a, b = vm.sample_at(t1), vm.sample_at(t2)
            summ = vm.finish()
            runs.append({"units_per_s": _window(a, b, "work_units"),
                         "io_mb_per_s": _window(a, b, "io_bytes") / 1e6,
                         "ring_full": b.get("io_ring_full", 0) - a.get("io_ring_full", 0),
                         "verify": summ.get("verify")})
        out.append({"io": int(io), "wss": wss, "window_s": [t1, t2], "runs": runs,
                    **{k: _med(r[k] for r in runs) for k in ("units_per_s", "io_mb_per_s", "ring_full")}})
    return out


def first_progress(s, tmp):
    runs = []
    for _ in range(s.int("REPS")):
        t0 = time.monotonic_ns()
        vm = _Vm(s, tmp, "f", ["--mem", s.str("VMM_FIRST_MEM"), "--vcpus", "1", "--guest", "dirtier"])
        polls, end = 0, time.monotonic() + 30
        while True:
            tp = time.monotonic_ns()
            wu = procs.ctl(vm.sock, "status", 2).get("work_units") or 0
            t1 = time.monotonic_ns()
            polls += 1
            if wu > 0:
                break
            if vm.p.poll() is not None or time.monotonic() > end:
                raise RuntimeError("no progress: " + procs.tail(vm.log))
        summ = vm.finish()
        runs.append({"first_progress_ms": summ.get("first_progress_ms"), "wall_ms": (t1 - t0) / 1e6,
                     "last_poll_ms": (t1 - tp) / 1e6, "polls": polls, "verify": summ.get("verify")})
    return {"mem": s.str("VMM_FIRST_MEM"), "runs": runs,
            **{k: _med(r[k] for r in runs) for k in ("first_progress_ms", "wall_ms", "last_poll_ms")}}


def run(s, tmp):
    """The four parts; a part that fails keeps its error and the others still run."""
    if not os.access(s.tool("bench_hostwrite"), os.X_OK):
        raise SystemExit("bench: %s missing (make bench builds it)" % s.tool("bench_hostwrite"))
    res = {}
    parts = (("write", write_rate), ("io", io_rates), ("first", first_progress),
             ("probe", lambda s, tmp: probe_cost.measure(s, _Vm, tmp)))
    for name, fn in parts:
        print("bench: vmm: %s" % name, flush=True)
        try:
            res[name] = fn(s, tmp)
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            procs.stop_all()
            res[name] = {"error": str(e)}
            print("bench: vmm: %s failed: %s" % (name, e), flush=True)
    return res
