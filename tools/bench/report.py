"""results.json and report.md.

results.json (schema 1): {"schema", "meta": {when, host, binary, settings, sets,
aborted}, "vmm": the vmm set's figures or null, "floor": tools/bench_uffd's or
null, "runs": [one row per migration: its cell (cells.py), migrate's final
record under "report", verify, the destination's fault-latency histogram,
"record" (the --record file, relative to the results' directory), "derived"
and "targets" (derive.py)], "policy": the policy set's analysis (regret.py),
written by build when the set has rows}.

report.md and every PNG are rebuilt from results.json and the record files
alone (build), so `tools/bench --replot DIR` redraws a finished run.
"""
import json
import os
import subprocess

import derive
import plots
import policy_report
import tables
import timeline
from tables import f

SET_TITLES = {
    "vmm": "The VMM (vmm)",
    "mig": "Pre-copy over the test network (mig)",
    "postcopy": "Post-copy and hybrid (postcopy)",
    "wan": "Distance (wan)",
    "policy": "The policy against every fixed mode (policy)",
}
SET_TEXT = {
    "vmm": "How fast the VMM runs its guests; median of REPS runs, no network.",
    "mig": "Link (tc tbf cap on a veth pair; uncapped = plain veth) x guest RAM x workload (idle, or a "
           "sequential dirtier at N % of the link: of 1 Gbit/s capped, of 10 Gbit/s uncapped; wss 512M "
           "of 1G, 1G of 4G, else half). Warm-up until the working set is written once (at most WARM_MAX s).",
    "postcopy": "Parts: d1g (1 Gbit/s direct, every RAM size), p05/p5 (1 Gbit/s through the delay "
                "line, 0.5 / 5 ms each way), d10g (10 Gbit/s direct). Workloads: idle; zipf (wss = RAM/2, "
                "50000 pages/s); seqN (sequential, N % of the link). Pre-copy of seq150 on d1g shows it "
                "does not converge.",
    "wan": "RTT x workload x mode over the delay line (tools/testnet.sh up --delay-ms D --rate R: TCP "
           "and the switch-over handshake see the real RTT); a fixed 3 s warm-up.",
    "policy": "Issue 8: guests (idle; seq, random and zipf writers at POL_RATES % of the link x POL_WSS "
              "working sets, prefilled; heavy DMA, POL_DMA) x links (POL_LINKS caps x POL_DELAYS one-way "
              "delays: none = direct veth, else the delay line), every fixed mode and auto in each cell, "
              "all with the same --timeout (the total-time limit) and --downtime-limit. Warm-up until the "
              "working set is written once (at most WARM_MAX s).",
}
PC_MODES = ("postcopy", "hybrid")


def save(out, res):
    """Write results.json atomically."""
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "results.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(res, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, os.path.join(out, "results.json"))


def load(out):
    with open(os.path.join(out, "results.json")) as fh:
        res = json.load(fh)
    if res.get("schema") != 1:
        raise SystemExit("bench: %s/results.json: schema %r, not 1" % (out, res.get("schema")))
    return res


class _Ctx:
    """Whether to draw, and the notes the drawing leaves."""

    def __init__(self, draw):
        self.draw = draw and bool(plots.gnuplot())
        self.notes = ["- no plots: gnuplot is not installed"] if draw and not self.draw else []


def _plot(ctx, fn, *args):
    """A plot's PNG name, or None (not drawing, or failed: the reason in the notes)."""
    if not ctx.draw:
        return None
    try:
        return fn(*args)
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
        ctx.notes.append("- plot failed: %s" % e)
        return None


def _img(png, alt):
    return ["", "![%s](%s)" % (alt, png)] if png else []


def _bars(out, rows, ctx):
    """One bar chart per group (set, network, RAM) comparing the modes per workload."""
    groups = {}
    for r in rows:
        rtt = r.get("delay_ms") is not None
        net = (r["link"] + ("-rtt%g" % r["rtt_nominal_ms"] if rtt else ""),
               r["link"] + (", RTT %g ms" % r["rtt_nominal_ms"] if rtt else ""))
        groups.setdefault((r["set"], net, r["mem"]), []).append(r)
    lines = []
    for (st, (net, label), mem), rs in groups.items():
        workloads = list(dict.fromkeys(r["workload"] for r in rs))
        modes = list(dict.fromkeys(r["mode"] for r in rs))
        total = {(r["workload"], r["mode"]): (r.get("derived") or {}).get("total_s") for r in rs}
        down = {(r["workload"], r["mode"]): (r.get("report") or {}).get("downtime_ms") if r.get("migrated")
                else None for r in rs}
        name = ("%s-%s-%s" % (st, net, mem)).replace(".", "_")
        title = "%s: %s, %s guest (missing bar: did not migrate)" % (st, label, mem)
        lines += _img(_plot(ctx, plots.bars_plot, out, name, title, workloads, modes, total, down),
                      "modes, " + title)
    return lines


def _timelines(out, rows, ctx):
    head = ["run", "ticks", "longest gap s", "switch at s", "post-copy s", "wire Mbit/s post-copy",
            "peak wire Mbit/s", "faults/s post-copy", "peak faults/s", "work/s before",
            "work/s post-copy", "min work/s post-copy", "owed at switch", "pusher last gfn"]
    body, imgs, missing = [], [], []
    for r in rows:
        went_pc = bool((r.get("report") or {}).get("postcopy"))
        if (r["mode"] not in PC_MODES and not went_pc) or not r.get("record"):
            continue  # a post-copy or hybrid run, or one the policy switched to post-copy
        tk = timeline.ticks(os.path.join(out, r["record"]))
        sm = timeline.summary(tk)
        if not sm:
            missing.append(r["id"])
            continue
        body.append([r["id"], sm["ticks"], f(sm["max_gap_s"], "%.3f"), f(sm["switch_s"], "%.2f"),
                     f(sm["postcopy_s"], "%.2f"), f(sm["wire_mbps_postcopy"]), f(sm["peak_wire_mbps"]),
                     f(sm["faults_per_s_postcopy"]), f(sm["peak_faults_per_s"]),
                     f(sm["units_per_s_before"], "%.0f"), f(sm["units_per_s_postcopy"], "%.0f"),
                     f(sm["min_units_per_s_postcopy"], "%.0f"), f(sm["owed_at_switch"], "%d"),
                     f(sm["pusher_last_gfn"], "%d")])
        title = "%s: %s" % (r["set"], tables.case(r))
        imgs += _img(_plot(ctx, plots.timeline_plot, out, r["id"], tk, title), "timeline " + r["id"])
    lines = []
    if body:
        lines += tables.md(head, body)
        lines += ["", "Rates between consecutive ticks of the record (a tick without the counter is "
                  "skipped, not 0); post-copy means from the first to the last post-copy tick."]
    if missing:
        lines.append("- no tick lines in the record (a binary without the timeline): %s" % ", ".join(missing))
    return lines + imgs


def _latency(out, rows, ctx):
    head = ["run", "faults", "mean us", "p50 <= us", "p99 <= us", "report p50 / p99 us",
            "missing pages at scrape"]
    body, imgs = [], []
    for r in rows:
        h = r.get("histogram")
        if not h or not sum(h.get("counts") or []):
            continue  # no remote fault (pre-copy, or none needed)
        body.append(tables.latency(r, h))
        title = "%s: %s, %d faults" % (r["set"], tables.case(r), sum(h["counts"]))
        imgs += _img(_plot(ctx, plots.latency_plot, out, r["id"], h, title), "fault latency " + r["id"])
    if not body:
        return []
    return tables.md(head, body) + ["", "p50/p99 <= us: the upper bound of the bucket holding the quantile "
                                        "(buckets: powers of two us, as QEMU 10.1)."] + imgs


def _head(res):
    m = res.get("meta") or {}
    s = m.get("settings") or {}
    out = ["# hybridmig benchmarks", "",
           "%s to %s; %s, %s cpus, load %s before; %s." % (
               m.get("started_at", "?"), m.get("ended_at", "?"), m.get("kernel", "?"), m.get("cpus", "?"),
               f(m.get("host_load1")), m.get("hybridmig_version", "hybridmig ?")),
           "Sets: %s; QUICK: %s; TLS: %s%s." % (" ".join(m.get("sets") or []), "yes" if s.get("quick") else "no",
                                               "no (--insecure)" if s.get("TLS") == "0" else "yes (TLS 1.3)",
                                               "; tag: " + s["TAG"] if s.get("TAG") else ""),
           "Every figure is in results.json (each migration's final record under \"report\"); "
           "`python3 tools/bench --replot DIR` redraws this page and its plots from it."]
    if m.get("aborted"):
        out.append("")
        out += ["**Aborted**: %s" % a for a in m["aborted"]]
    return out


def build(out, with_plots=True):
    """Rebuild report.md (and the PNGs) from out/results.json and the records."""
    res = load(out)
    rows = [derive.derive(r, res.get("floor")) for r in res.get("runs") or []]
    ctx = _Ctx(with_plots)
    lines = _head(res)
    sets = (res.get("meta") or {}).get("sets") or list(SET_TITLES)
    analysis = None
    for st in sets:
        rs = [r for r in rows if r["set"] == st]
        if st == "vmm" and res.get("vmm"):
            lines += ["", "## " + SET_TITLES[st], "", SET_TEXT[st], ""] + tables.vmm(res["vmm"])
        elif rs:
            lines += ["", "## " + SET_TITLES[st], "", SET_TEXT[st], ""]
            if st == "policy":
                body, analysis = policy_report.section(out, rs, (res.get("vmm") or {}).get("probe"))
                lines += body
            else:
                lines += {"mig": lambda: tables.mig(rs), "wan": lambda: tables.wan(rs),
                          "postcopy": lambda: tables.postcopy(rs, res.get("floor"))}[st]()
            lines += _bars(out, rs, ctx)
    fails = tables.failures(rows)
    if fails:
        lines += ["", "## Did not migrate, or did not verify", ""] + fails
    tl = _timelines(out, rows, ctx)
    if tl:
        lines += ["", "## Post-copy timelines", ""] + tl
    lat = _latency(out, rows, ctx)
    if lat:
        lines += ["", "## Post-copy fault latency (the destination's histogram)", ""] + lat
    if ctx.notes:
        lines += ["", "## Notes", ""] + ctx.notes
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write(text)
    if analysis is not None:
        fresh = load(out)  # as found: build's derived figures stay out of the runs
        fresh["policy"] = analysis
        save(out, fresh)
    return text
