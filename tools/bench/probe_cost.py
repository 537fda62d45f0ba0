"""The vmm set's probe part: what measuring costs the guest (issue 8: < 3 %).

One VM runs an unthrottled random writer (VMM_PROBE_WSS in VMM_PROBE_MEM:
every page it writes after a re-protection faults and fires the dirty
tracepoint). In one run, REPS rounds of three windows each, the order rotated
every round so that a drift of the machine falls on every kind alike:
  none     nothing measures: dirty tracking is off;
  bpf      `hybridmig trace`: the eBPF probe, with the dirty tracking it needs
           (re-protected once per epoch, 10 s);
  harvest  `hybridmig trace --no-bpf`: the fallback, the VMM's own harvest,
           which re-protects every 100 ms (its curve's resolution).
Each window's guest rate is work units/s between 1 s and 4 s after the trace
started (the probe has loaded by then; the trace runs 5 s). The probe's cost
is bpf against none: everything the probe does to the guest, tracking
included; the fallback's is harvest against none. With the kernel's BPF
statistics on, bpftool gives the run time per event of each hm_* program
(read at both ends of the window, while the trace holds them loaded).
"""
import json
import os
import shutil
import statistics
import subprocess
import time

import procs

KINDS = ("none", "harvest", "bpf")
STATS = "/proc/sys/kernel/bpf_stats_enabled"


def _units(sock):
    st = procs.ctl(sock, "status", 5)
    if "uptime_s" not in st:
        raise RuntimeError("status failed")
    return st["uptime_s"], st["work_units"]


def _bpf_progs():
    """{name: (run_cnt, run_time_ns)} of the probe's programs, or {} without bpftool."""
    if not shutil.which("bpftool"):
        return {}
    try:
        progs = json.loads(procs.capture(["bpftool", "-j", "prog", "show"], 10))
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired):
        return {}
    return {p["name"]: (p.get("run_cnt", 0), p.get("run_time_ns", 0))
            for p in progs if p.get("name", "").startswith("hm_")}


def _window(s, vm, kind, log):
    tr = None
    if kind != "none":
        args = [s.hm, "trace", "--control", vm.sock, "--seconds", "5"]
        tr = procs.spawn(args + (["--no-bpf"] if kind == "harvest" else []), log)
    t0 = time.monotonic()
    time.sleep(1.0)
    a = _units(vm.sock)
    p0 = _bpf_progs() if kind == "bpf" else {}
    time.sleep(max(0.0, t0 + 4.0 - time.monotonic()))
    b = _units(vm.sock)
    # while the trace still runs: its programs are gone once it exits
    per_event = _per_event(p0, _bpf_progs()) if kind == "bpf" else {}
    if tr is not None:
        rc = procs.wait_gone(tr, 15)
        if rc != 0:
            raise RuntimeError("trace %s exited %s: %s" % (kind, rc, procs.tail(log)))
    else:
        time.sleep(max(0.0, t0 + 5.5 - time.monotonic()))
    return (b[1] - a[1]) / (b[0] - a[0]), per_event


def _per_event(before, after):
    out = {}
    for name, (c1, t1) in after.items():
        c0, t0 = before.get(name, (0, 0))
        if c1 > c0:
            out[name] = {"events": c1 - c0, "ns_per_event": (t1 - t0) / (c1 - c0)}
    return out


def measure(s, vm_cls, tmp):
    """Rounds of none/harvest/bpf windows in one VM: every window's guest rate."""
    spec = "dirtier:wss=%s,rate=0,pattern=random" % s.str("VMM_PROBE_WSS")
    vm = vm_cls(s, tmp, "p", ["--mem", s.str("VMM_PROBE_MEM"), "--vcpus", "1", "--guest", spec],
                seconds=30 + 20 * s.int("REPS"))
    old = None
    try:
        with open(STATS) as f:
            old = f.read().strip()
        with open(STATS, "w") as f:
            f.write("1")
    except OSError:
        old = None
    rates = {k: [] for k in KINDS}
    events = {}
    try:
        vm.up()
        time.sleep(2.0)  # the writer's first touch of its working set
        log = os.path.join(tmp, "trace.log")
        for r in range(s.int("REPS")):
            for kind in KINDS[r % 3:] + KINDS[:r % 3]:
                rate, per_event = _window(s, vm, kind, log)
                rates[kind].append(rate)
                for name, e in per_event.items():
                    events.setdefault(name, []).append(e["ns_per_event"])
        summ = vm.finish()
    finally:
        if old is not None:
            try:
                with open(STATS, "w") as f:
                    f.write(old)
            except OSError:
                pass
    return {"spec": spec, "mem": s.str("VMM_PROBE_MEM"), "rounds": s.int("REPS"), "window_s": [1.0, 4.0],
            "units_per_s": rates, "bpf_ns_per_event": {k: statistics.median(v) for k, v in events.items()},
            "bpf_stats": old is not None, "verify": summ.get("verify")}


def summary(p):
    """Medians and costs (percent of the guest's rate) from measure()'s raw rates."""
    med = {k: statistics.median(v) for k, v in (p.get("units_per_s") or {}).items() if v}

    def cost(a, b):
        return 100.0 * (med[a] - med[b]) / med[a] if med.get(a) and b in med else None
    return {"median_units_per_s": med, "probe_cost_pct": cost("none", "bpf"),
            "harvest_cost_pct": cost("none", "harvest")}
