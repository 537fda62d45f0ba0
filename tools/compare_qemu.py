"""One QEMU cell of tools/compare.py: a source QEMU in NET-a, a destination in
NET-b (-incoming defer), both booting the dirtier's multiboot image
(tools/mbimage), and one migration between them driven over QMP. Stdlib only.

Modes: precopy; postcopy-after-pass (migrate-start-postcopy once query-migrate's
ram.dirty-sync-count reaches 2, i.e. after the first pass over RAM);
postcopy-start (migrate-start-postcopy right after migrate).

The guest's progress counter lives in the image's RAM mailbox (the device
window's page mapped onto RAM, tools/mbimage.c): read with "xp" on the source
before the migration and on the destination during post-copy and after.
"""
import os
import time

from compare_env import link_bytes, wait_for
from guestpage import PAGE, generations, in_flight, page_ok
from qmp import QMP, QMPError

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
MODES = ("precopy", "postcopy-after-pass", "postcopy-start")
VERIFY_PAGES = 256


def qemu_argv(cfg, image, qmp_path, incoming):
    a = [QEMU, "-M", "pc", "-accel", cfg.accel, "-m", "%dM" % (cfg.mem >> 20), "-smp", "1",
         "-nodefaults", "-display", "none", "-no-reboot", "-kernel", image,
         "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
    if cfg.accel == "kvm":
        a += ["-cpu", "host"]
    if incoming:
        a += ["-incoming", "defer"]
    return a


def units_rate(q, progress_gpa, secs):
    """The guest's pages/s over @secs, from its mailbox."""
    t0, u0 = time.monotonic(), q.xp_u64(progress_gpa)
    time.sleep(secs)
    t1, u1 = time.monotonic(), q.xp_u64(progress_gpa)
    return (u1 - u0) / (t1 - t0)


def settle(cfg, q, info):
    """Wait for the prefill (every page written once), then for the rate to settle."""
    if not wait_for(lambda: q.xp_u64(info["progress_gpa"]) >= info["ws_pages"], cfg.prefill_s, 0.2):
        raise RuntimeError("the guest did not write its working set within %d s" % cfg.prefill_s)
    time.sleep(cfg.settle_s)
    return units_rate(q, info["progress_gpa"], 1.0)


def watch(cfg, sq, dq, mode, progress_gpa, row):
    """Poll query-migrate to the end; switch to post-copy when the mode says.
    Returns the final status and (time, units) samples of the destination's
    guest during post-copy."""
    t0 = time.monotonic()
    switched = mode == "postcopy-start"
    samples = []
    while True:
        st = sq.cmd("query-migrate")
        status = st.get("status")
        if status in ("completed", "failed", "cancelled"):
            return status, st, samples
        if time.monotonic() - t0 > cfg.timeout:
            sq.cmd("migrate_cancel")
            wait_for(lambda: sq.cmd("query-migrate").get("status") != "cancelling", 20)
            return "timeout", sq.cmd("query-migrate"), samples
        if not switched and mode == "postcopy-after-pass" and \
                st.get("ram", {}).get("dirty-sync-count", 0) >= 2:
            sq.cmd("migrate-start-postcopy")
            switched = True
            row["switch_s"] = round(time.monotonic() - t0, 3)
        if status == "postcopy-active":
            row["postcopy"] = True
            # from when the guest runs there: before, the destination's RAM is not yet its own
            if dq.cmd("query-status").get("running"):
                samples.append((time.monotonic(), dq.xp_u64(progress_gpa)))
        time.sleep(0.1 if status == "postcopy-active" else 0.05)


def postcopy_rate(samples):
    if len(samples) < 2 or samples[-1][0] - samples[0][0] < 0.1:
        return None
    return (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])


def verify(q, info, tmp):
    """Stop the guest and check the generation table and VERIFY_PAGES pages spread
    over the working set (pmemsave): "ok" or what is wrong. One page may be
    mid-write (the guest stops anywhere)."""
    q.cmd("stop")
    n, ws = info["ws_pages"], info["ws_gpa"]
    path = os.path.join(tmp, "verify.bin")
    q.cmd("pmemsave", val=info["gen_gpa"], size=n * 8, filename=path)
    with open(path, "rb") as f:
        gens = generations(f.read(), n)
    if min(gens) < 1:
        return "BAD: page %d never written" % gens.index(min(gens))
    mid = []
    for i in sorted({n - 1} | {k * n // VERIFY_PAGES for k in range(VERIFY_PAGES)}):
        q.cmd("pmemsave", val=ws + i * PAGE, size=PAGE, filename=path)
        with open(path, "rb") as f:
            data = f.read()
        if not page_ok(data, (ws >> 12) + i, gens[i]):
            if mid or not in_flight(data, gens[i]):
                return "BAD: page %d (gfn %#x)" % (i, (ws >> 12) + i)
            mid.append(i)
    os.unlink(path)
    return "ok" + (" (page %d mid-write)" % mid[0] if mid else "")


def collect(row, st, dst_st):
    ram = st.get("ram", {})
    row.update(total_ms=st.get("total-time"), downtime_ms=st.get("downtime"),
               bytes_sent=ram.get("transferred"), dirty_syncs=ram.get("dirty-sync-count"),
               postcopy_requests=ram.get("postcopy-requests"), error=st.get("error-desc"))
    vb = dst_st.get("postcopy-vcpu-blocktime")
    row["vcpu_blocked_ms"] = vb[0] if vb else dst_st.get("postcopy-blocktime")
    if row["vcpu_blocked_ms"] is not None and row.get("postcopy_requests"):
        # QEMU 7.2 keeps no per-fault latency: the mean wait per page request
        row["fault_latency_mean_us"] = 1000.0 * row["vcpu_blocked_ms"] / row["postcopy_requests"]


def migrate(cfg, cell, mode, sq, dq, port, row, tmp):
    post = mode != "precopy"
    caps = [{"capability": "postcopy-ram", "state": post},
            {"capability": "postcopy-blocktime", "state": post}]
    uri = "tcp:%s:%d" % (cfg.addr_b, port)
    dq.cmd("migrate-set-capabilities", capabilities=caps)
    dq.cmd("migrate-incoming", uri=uri)
    sq.cmd("migrate-set-capabilities", capabilities=caps)
    sq.cmd("migrate-set-parameters", **{"max-bandwidth": cfg.cap_bytes,
                                        "downtime-limit": cfg.limit_ms})
    b0 = link_bytes(cfg.net)
    sq.cmd("migrate", uri=uri)
    if mode == "postcopy-start":
        sq.cmd("migrate-start-postcopy")
        row["switch_s"] = 0.0
    status, st, samples = watch(cfg, sq, dq, mode, cell["info"]["progress_gpa"], row)
    row["link_bytes"] = link_bytes(cfg.net) - b0
    row["status"] = status
    collect(row, st, dq.cmd("query-migrate") if status == "completed" else {})
    row["units_per_s_postcopy"] = postcopy_rate(samples)
    row["postcopy"] = row["postcopy"] or bool(row.get("postcopy_requests"))
    if status == "completed":
        row["units_per_s_after"] = units_rate(dq, cell["info"]["progress_gpa"], 1.0)
        row["verify"] = verify(dq, cell["info"], tmp)


def log_tail(path, n=200):
    try:
        with open(path) as f:
            return " ".join(f.read().split())[-n:]
    except OSError:
        return ""


def run_cell(cfg, cell, mode, procs, tmp, port):
    """One migration; returns its row (figures null where they do not apply)."""
    row = {"side": "qemu", "mode": mode, "status": None, "verify": None, "postcopy": False}
    limit = cfg.timeout * 2 + cfg.prefill_s + 120
    qs, qd = os.path.join(tmp, "src.qmp"), os.path.join(tmp, "dst.qmp")
    for p in (qs, qd):
        if os.path.exists(p):
            os.unlink(p)
    img = cell["info"]["image"]
    src = procs.spawn(cfg.net + "-a", qemu_argv(cfg, img, qs, False), os.path.join(tmp, "src.log"), limit)
    dst = procs.spawn(cfg.net + "-b", qemu_argv(cfg, img, qd, True), os.path.join(tmp, "dst.log"), limit)
    sq = dq = None
    try:
        sq, dq = QMP(qs, timeout=30, wait=20), QMP(qd, timeout=30, wait=20)
        row["units_per_s_before"] = settle(cfg, sq, cell["info"])
        migrate(cfg, cell, mode, sq, dq, port, row, tmp)
    except (OSError, QMPError, RuntimeError, ValueError) as e:
        row["status"] = row["status"] or "error"
        why = [str(e)]
        for side, p, log in (("source", src, "src.log"), ("destination", dst, "dst.log")):
            if p.poll() is not None:
                why.append("%s QEMU exited (%d): %s" % (side, p.returncode,
                                                        log_tail(os.path.join(tmp, log))))
        row["error"] = "; ".join(why)
    finally:
        for q in (sq, dq):
            if q:
                try:
                    q.cmd("quit")
                except (OSError, QMPError):
                    pass
                q.close()
        for p in (src, dst):
            procs.stop(p)
    return row
