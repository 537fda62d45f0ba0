"""One migration cell: `incoming` in NET-b, `run` in NET-a, a warm-up, then
    migrate --mode M --downtime-limit L --timeout T --record FILE --json
then the destination's fault-latency histogram (scraped from its /metrics
inside NET-b), `verify` on the destination (on the source when the migration
failed: the VM must still run there), and stop. Returns the cell's row:
the cell, migrate's final record ("report"), the verify, the histogram, the
record file (copied under OUT/records/) and what the host was doing.
"""
import json
import os
import shutil
import time

import procs
import prom
from settings import BUSY_PAT

class Lab:
    """What the cells of a run share: settings, scratch, the network, credentials, ports."""

    def __init__(self, s, tmp, tls):
        self.s = s
        self.tmp = tmp
        self.net = procs.Testnet("hmbn%d" % (os.getpid() % 10000))
        if tls:
            src, dst = procs.make_certs(os.path.join(tmp, "pki"))
            self.tls_src, self.tls_dst = ["--tls-dir", src], ["--tls-dir", dst]
        else:
            self.tls_src = self.tls_dst = ["--insecure"]
        # below the ephemeral range (32768+), two ports a cell
        self.port = 10000 + (os.getpid() % 5000) * 4

    def next_port(self):
        self.port += 2
        return self.port


def final_record(path):
    """The last JSON object of a migrate --json output that is not a progress line."""
    rec = None
    try:
        with open(path, errors="replace") as f:
            for ln in f:
                ln = ln.strip()
                if not ln.startswith("{"):
                    continue
                try:
                    o = json.loads(ln)
                except ValueError:
                    continue
                if o.get("event") != "progress":
                    rec = o
    except OSError:
        pass
    return rec


def _warm(c, sock, warm_max):
    """Until the dirtier has written its working set once (at most warm_max s;
    idle: 1 s), or a fixed number of seconds. Returns (seconds, status)."""
    t0 = time.monotonic()
    if c["warm"] != "wss":
        time.sleep(float(c["warm"]))
    elif c["workload"] == "idle" or not c["wss_pages"]:
        time.sleep(1)
    else:
        procs.wait_for(lambda: procs.ctl(sock, "status", 5).get("work_units", 0) >= c["wss_pages"],
                       warm_max, 0.25)
    return time.monotonic() - t0, procs.ctl(sock, "status", 5)


def _listening(log):
    try:
        with open(log, errors="replace") as f:
            return "waiting for a VM" in f.read()
    except OSError:
        return False


def _start(lab, c, d, port, mport):
    """The destination, then the source; the source's Popen, or an error."""
    s, net = lab.s, lab.net
    wait_s = s.int("WARM_MAX") + 60
    dst = procs.spawn([s.hm, "incoming", *lab.tls_dst, "--listen", "%s:%d" % (net.b, port),
                       "--control", d + "/d.sock", "--metrics-listen", "127.0.0.1:%d" % mport,
                       "--wait", str(wait_s)], d + "/d.log", net.ns("b"))
    src = procs.spawn([s.hm, "run", "--mem", c["mem"], "--guest", c["guest"],
                       "--control", d + "/s.sock"], d + "/s.log", net.ns("a"))
    if not procs.wait_for(lambda: _listening(d + "/d.log") or dst.poll() is not None, 15):
        return dst, src, "destination did not listen: " + procs.tail(d + "/d.log")
    if not procs.wait_for(lambda: procs.ctl(d + "/s.sock", "status", 2).get("state") == "running"
                          or src.poll() is not None, 30):
        return dst, src, "source VM did not start: " + procs.tail(d + "/s.log")
    if src.poll() is not None or dst.poll() is not None:
        return dst, src, "exited: " + procs.tail(d + "/s.log") + " / " + procs.tail(d + "/d.log")
    return dst, src, None


def _migrate(lab, c, d, port):
    s = lab.s
    args = [s.hm, "migrate", *lab.tls_src, "--control", d + "/s.sock",
            "--to", "%s:%d" % (lab.net.b, port), "--mode", c["mode"],
            "--downtime-limit", str(c["downtime_limit_ms"]), "--timeout", str(c["timeout_s"]),
            "--record", d + "/record.jsonl", "--json"]
    t0 = time.monotonic()
    # the outer bound: --timeout, then pushing a 4 GiB guest at a slow rate (SLACK_S)
    rc = procs.run_bounded(args, c["timeout_s"] + s.int("SLACK_S"), d + "/m.out", d + "/m.err",
                           lab.net.ns("a"))
    return rc, time.monotonic() - t0, " ".join(procs.in_ns(lab.net.ns("a"), args))


def _finish(row, dst, src, d, mport, ns_b):
    """Histogram, verify, stop; on the destination if the VM moved, else on the source."""
    moved = row["migrate_rc"] == 0
    if moved and not procs.wait_for(
            lambda: procs.ctl(d + "/d.sock", "status", 2).get("state") == "running", 15):
        row["error"] = "the destination's control socket did not answer: " + procs.tail(d + "/d.log")
    elif moved:
        text = procs.scrape(ns_b, "http://127.0.0.1:%d/metrics" % mport)
        row["histogram"] = prom.fault_histogram(text) if text else None
    side, sock = ("destination", d + "/d.sock") if moved else ("source", d + "/s.sock")
    v = procs.ctl(sock, "verify", 60)
    row.update(verify_on=side, verify=v.get("verify", "none"),
               verify_bad_pages=v.get("verify_bad_pages"),
               verify_pages_checked=v.get("verify_pages_checked"))
    procs.ctl(sock, "stop", 5)
    first, second = (dst, src) if moved else (src, dst)
    procs.wait_gone(first, 10)
    procs.wait_gone(second, 10 if moved else 0)


def _keep_record(row, d, out):
    src = d + "/record.jsonl"
    if os.path.exists(src):
        os.makedirs(os.path.join(out, "records"), exist_ok=True)
        rel = os.path.join("records", row["id"] + ".jsonl")
        shutil.copyfile(src, os.path.join(out, rel))
        row["record"] = rel


def run_cell(lab, c, out):
    """Migrate one cell; its row (never raises for a failed migration)."""
    s = lab.s
    d = os.path.join(lab.tmp, c["id"])
    os.makedirs(d, exist_ok=True)
    port = lab.next_port()
    c = row = dict(c, downtime_limit_ms=s.int("DOWNTIME"), tag=s.str("TAG"), record=None,
                   histogram=None, report=None, migrated=False, error=None, migrate_rc=None)
    row.update(other_hybridmig_procs=procs.count_named("hybridmig"),
               busy_procs=procs.busy(BUSY_PAT), host_load1_before=procs.load1())
    dst, src, err = _start(lab, c, d, port, port + 1)
    if err:
        row.update(error=err, verify="none", verify_on=None)
        procs.wait_gone(src, 0)
        procs.wait_gone(dst, 0)
        return row
    warm_s, st = _warm(c, d + "/s.sock", s.int("WARM_MAX"))
    row.update(warm_s=round(warm_s, 2), warm_work_units=st.get("work_units"),
               warm_work_units_per_s=st.get("work_units_per_s"),
               src_rss_anon_bytes=procs.rss_anon(src.pid))
    rc, secs, cmd = _migrate(lab, c, d, port)
    rep = final_record(d + "/m.out")
    row.update(migrate_rc=rc, migrate_cmd=cmd, migrate_wall_s=round(secs, 3), report=rep,
               migrated=rc == 0 and bool(rep and rep.get("ok")))
    if not row["migrated"]:
        row["error"] = (rep or {}).get("error") or procs.tail(d + "/m.err") or "no record from migrate"
    _finish(row, dst, src, d, port + 1, lab.net.ns("b"))
    if not row["migrated"] or row["verify"] != "ok":
        row["stderr_tail"] = {k: procs.tail(os.path.join(d, f)) for k, f in
                              (("source", "s.log"), ("destination", "d.log"), ("migrate", "m.err"))}
    _keep_record(row, d, out)
    return row
