"""One hybridmig cell of tools/compare.py: `hybridmig run` in NET-a, `hybridmig
incoming` in NET-b, `hybridmig migrate --json` between them, the same guest
spec as the QEMU side. Stdlib only; needs KVM.

Modes: precopy, postcopy, hybrid (--postcopy-after-rounds 1: post-copy after
the first pass, QEMU's postcopy-after-pass), auto. Plain TCP (--insecure)
as QEMU's tcp: URI, unless the config asks for TLS.
"""
import json
import os
import subprocess
import time

from compare_env import link_bytes, wait_for

MODES = ("precopy", "hybrid", "postcopy", "auto")


def ctl(cfg, sock, *args, timeout=30):
    """One control-socket command (`hybridmig CMD --control SOCK --json`), its JSON answer or {}."""
    try:
        r = subprocess.run([cfg.hm] + list(args) + ["--control", sock, "--json"],
                           capture_output=True, text=True, timeout=timeout)
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return {}


def tls_args(cfg, side):
    return ["--tls-dir", os.path.join(cfg.pki, side)] if cfg.pki else ["--insecure"]


def settle(cfg, sock, ws_pages):
    """Wait for the prefill, then for the rate; the guest's pages/s over a second."""
    def units():
        return ctl(cfg, sock, "status").get("work_units") or 0

    if not wait_for(lambda: units() >= ws_pages, cfg.prefill_s, 0.2):
        raise RuntimeError("the guest did not write its working set within %d s" % cfg.prefill_s)
    time.sleep(cfg.settle_s)
    t0, u0 = time.monotonic(), units()
    time.sleep(1.0)
    return (units() - u0) / (time.monotonic() - t0)


def final_record(out):
    """migrate --json's final line ({"event":"done",...}), or {}."""
    for line in reversed(out.splitlines()):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event") == "done":
            return rec
    return {}


def migrate(cfg, mode, ssock, port, row):
    argv = ["ip", "netns", "exec", cfg.net + "-a", cfg.hm, "migrate", "--mode", mode,
            "--control", ssock, "--to", "%s:%d" % (cfg.addr_b, port),
            "--downtime-limit", str(cfg.limit_ms), "--timeout", str(cfg.timeout), "--json"]
    argv += tls_args(cfg, "src") + (["--postcopy-after-rounds", "1"] if mode == "hybrid" else [])
    b0 = link_bytes(cfg.net)
    m = subprocess.run(["timeout", "-k", "5", str(cfg.timeout * 3 + 60)] + argv,
                       capture_output=True, text=True)
    row["link_bytes"] = link_bytes(cfg.net) - b0
    f = final_record(m.stdout)
    row["status"] = "completed" if m.returncode == 0 and f.get("ok") else \
        (f.get("failure") or "exit %d" % m.returncode)
    row.update(total_ms=f.get("total_ms"), downtime_ms=f.get("downtime_ms"),
               bytes_sent=f.get("bytes_wire"), ran=f.get("mode"), rounds=f.get("rounds"),
               units_per_s_postcopy=f.get("work_units_per_s_postcopy"),
               units_per_s_after=f.get("work_units_per_s_after"),
               fault_latency_p50_us=f.get("fault_latency_p50_us"),
               fault_latency_p99_us=f.get("fault_latency_p99_us"),
               vcpu_blocked_ms=f.get("vcpu_blocked_ms"), postcopy_requests=f.get("pages_requested"),
               postcopy=f.get("postcopy"),
               error=f.get("error") or (m.stderr.strip().splitlines() or [None])[-1])
    return m.returncode == 0


def run_cell(cfg, cell, mode, procs, tmp, port):
    """One migration; returns its row (figures null where they do not apply)."""
    row = {"side": "hybridmig", "mode": mode, "status": None, "verify": None}
    ssock, dsock = os.path.join(tmp, "s.sock"), os.path.join(tmp, "d.sock")
    for s in (ssock, dsock):
        if os.path.exists(s):
            os.unlink(s)
    limit = cfg.timeout * 3 + cfg.prefill_s + 180
    dlog, slog = os.path.join(tmp, "hm-d.log"), os.path.join(tmp, "hm-s.log")
    d = procs.spawn(cfg.net + "-b", [cfg.hm, "incoming", "--listen", "%s:%d" % (cfg.addr_b, port),
                                     "--control", dsock] + tls_args(cfg, "dst"), dlog, limit)
    s = procs.spawn(cfg.net + "-a", [cfg.hm, "run", "--mem", str(cfg.mem), "--guest", cell["spec"],
                                     "--control", ssock], slog, limit)
    try:
        if not wait_for(lambda: "waiting for a VM" in open(dlog).read(), 20):
            raise RuntimeError("incoming did not listen: " + open(dlog).read()[-300:])
        if not wait_for(lambda: ctl(cfg, ssock, "status").get("state") == "running", 30):
            raise RuntimeError("source VM did not start: " + open(slog).read()[-300:])
        row["units_per_s_before"] = settle(cfg, ssock, cell["info"]["ws_pages"])
        if migrate(cfg, mode, ssock, port, row):
            wait_for(lambda: ctl(cfg, dsock, "status").get("state") == "running", 30)
            row["verify"] = ctl(cfg, dsock, "verify", timeout=120).get("verify")
    except (OSError, RuntimeError, ValueError) as e:
        row["status"] = row["status"] or "error"
        row["error"] = str(e)
    finally:
        for sock in (dsock, ssock):
            ctl(cfg, sock, "stop", timeout=10)
        wait_for(lambda: d.poll() is not None and s.poll() is not None, 15)
        procs.stop(d)
        procs.stop(s)
    return row
