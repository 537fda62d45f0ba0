"""The policy set's section of report.md (issue 8): per cell the four modes, the
best fixed mode, auto's choice and regret, KubeVirt's stall rule replayed over
the pre-copy recording; the summary against the issue's targets; the model's
prediction errors. The figures come from regret.analyse (pure); this module
reads the record files and writes markdown.
"""
import os

import probe_cost
import regret
import timeline
from tables import f, md



def probe_figures(probe):
    """The vmm set's probe part, when this run has it: (value, verdict, sentence)."""
    sm = probe_cost.summary(probe or {})
    pct = sm["probe_cost_pct"]
    if pct is None:
        why = (probe or {}).get("error") or "the vmm set did not run with this one (SETS=\"vmm policy\")"
        return "not measured", "-", "not measured: " + why
    return ("%.1f %%" % pct, _verdict(pct < 3.0),
            "%.1f %% of the guest's rate, the vmm set's probe part (an unthrottled random writer, "
            "`trace` against nothing measuring, in one VM; the harvest fallback: %s %%)"
            % (pct, f(sm["harvest_cost_pct"], "%.1f")))


def ticks_loader(out):
    """ticks_of(row): the tick lines of the row's record file ([] without one), cached."""
    cache = {}

    def ticks_of(r):
        rel = (r or {}).get("record")
        if not rel:
            return []
        if rel not in cache:
            cache[rel] = timeline.ticks(os.path.join(out, rel))
        return cache[rel]
    return ticks_of


def _pct(v, signed=False):
    if v is None:
        return "-"
    if v == regret.INF:
        return "FAILED"
    return ("%+.1f%%" if signed else "%.1f%%") % (v * 100)


def _o(o):
    """One outcome: 'downtime ms, total s, ok' or the reason it is not ok."""
    if not o:
        return "-"
    state = "ok" if o["ok"] and not o["why"] else (("ok, " + o["why"]) if o["ok"] else o["why"])
    down = "-" if o["downtime_ms"] is None else "%.3f ms" % o["downtime_ms"]
    return "%s, %s s, %s" % (down, f(o["total_s"], "%.1f"), state)


def _kv(c):
    kv = c["kubevirt"]
    if kv is None:
        return "no record", "-", "not replayed: no pre-copy recording"
    rp = kv["replay"]
    stall = f(rp["stall_s"], "%.1f")
    if kv.get("unknown"):
        return ("%.1f" % rp["switch_s"]), stall, kv["why"]
    sw = "%.1f" % rp["switch_s"] if rp["fired"] else "never"
    return sw, stall, _o(kv) + (", estimated" if kv["estimated"] else ", the pre-copy run's own")


def cell_table(scored):
    head = ["link", "workload", "precopy", "postcopy", "hybrid", "auto", "best fixed", "auto ran",
            "auto regret", "KubeVirt stall s", "KubeVirt switch s", "KubeVirt outcome", "KubeVirt regret",
            "auto vs KubeVirt"]
    body = []
    for (net, wl), c in scored:
        sw, stall, kvo = _kv(c)
        best = ("%s (%s ms)" % (c["best_mode"], f(c["best_downtime_ms"], "%.3f"))
                if c["scored"] else "none ok: not scored")
        body.append([net, wl] + [_o(c["fixed"].get(m)) for m in regret.FIXED] +
                    [_o(c["auto"]), best, c["auto_mode"] or "-",
                     _pct(c["auto_regret"]) if c["scored"] else "not scored", stall, sw, kvo,
                     _pct(c["kubevirt_regret"]), c["auto_vs_kubevirt"] or "-"])
    return md(head, body)


def _verdict(ok):
    return "MET" if ok else "MISSED"


def _med(v):
    return "infinite (failed runs)" if v == regret.INF else _pct(v)


def _runs(p):
    return "%s over %d run%s" % (_pct(p["median_abs_error"]), p["runs"], "" if p["runs"] == 1 else "s")


def _share(s):
    if not s["scored"]:
        return "no scored cell"
    return "%d of %d scored cells (%.1f%%)" % (s["within"], s["scored"], s["share"] * 100)


def _cells(keys):
    return "; ".join("%s %s" % tuple(k) for k in keys)


def summary_table(sm, probe=None):
    a, k, t, v = sm["auto"], sm["kubevirt"], sm["targets"], sm["auto_vs_kubevirt"]
    pt, pd, pp = sm["prediction_total"], sm["prediction_downtime"], sm["precopy_prediction"]
    fails = sm["failed_choices"]
    rows = [
        ["auto within 10 % of the best fixed mode", _share(a), ">= 90 %", _verdict(t["within_10pct_in_90pct"])],
        ["auto choices that failed", "%d%s" % (len(fails), (": " + _cells(fails)) if fails else ""), "none",
         _verdict(t["no_failed_choice"])],
        ["auto median regret", _med(a["median_regret"]), "-", "-"],
        ["KubeVirt rule within 10 % of the best fixed mode", _share(k), "-", "-"],
        ["KubeVirt rule's choices that failed", "%d" % k["failed"], "-", "-"],
        ["KubeVirt rule median regret", _med(k["median_regret"]), "-", "-"],
        ["auto against KubeVirt's rule", "better in %d, same in %d, worse in %d cells" % (
            v["better"], v["same"], v["worse"]), "auto beats it", _verdict(t["beats_kubevirt"])],
        ["prediction error, total time (median abs)", _runs(pt), "<= 7 %", _verdict(t["prediction_total_7pct"])],
        ["prediction error, downtime (median abs)", _runs(pd), "<= 7 %", _verdict(t["prediction_downtime_7pct"])],
        ["pre-copy predicted_downtime_ms error (median abs)", _runs(pp), "-", "-"],
        ["probe cost (vmm set)", probe_figures(probe)[0], "< 3 %", probe_figures(probe)[1]],
    ]
    if sm["not_scored"]:
        rows.append(["cells not scored (no fixed mode ok)", "%d: %s" % (len(sm["not_scored"]),
                                                                       _cells(sm["not_scored"])), "-", "-"])
    return md(["figure", "value", "target", "verdict"], rows)


def prediction_table(preds, pre):
    head = ["run", "ran", "predicted total s", "total s", "total error", "predicted downtime ms",
            "downtime ms", "downtime error"]
    body = [[p["id"], p["mode"], f(p["predicted_total_s"], "%.2f"), f(p["total_s"], "%.2f"),
             _pct(p["total_error"], True), f(p["predicted_downtime_ms"], "%.3f"), f(p["downtime_ms"], "%.3f"),
             _pct(p["downtime_error"], True)] for p in preds]
    body += [[p["id"], "precopy (its own predicted_downtime_ms)", "-", "-", "-",
              f(p["predicted_downtime_ms"], "%.3f"), f(p["downtime_ms"], "%.3f"), _pct(p["error"], True)]
             for p in pre]
    return md(head, body) if body else ["No auto run moved the VM: no prediction to check."]


def section(out, rows, probe=None):
    """(markdown lines, the analysis for results.json)."""
    a = regret.analyse(rows, ticks_loader(out))
    lines = cell_table(a["cells"])
    lines += ["", "Each mode: downtime, total time, and ok or why not: ok = migrate exited 0, the guest "
              "verified, total within the total-time limit (--timeout) and, after post-copy, the guest's "
              "slowdown (1 - work/s during post-copy / before) within %g %% (max_slowdown's default). "
              "best fixed = the ok fixed mode with the least downtime; regret = (auto's downtime - best) "
              "/ best, FAILED when auto's run is not ok. KubeVirt: VEP 248's stall rule (stalled when the "
              "remaining bytes are not 4 %% below their least of 40 s earlier; then a switch within 4 %% "
              "of the least level, not in a link blip) replayed over the pre-copy run's recording "
              "(tools/bench/kubevirt.py); when it fires, the outcome is estimated from the hybrid run: its "
              "downtime, and the switch time plus the time it needed after its own switch. auto vs "
              "KubeVirt: same when the regrets are within 10 points or both failed." % (a["max_slowdown"] * 100),
              "", "Against the issue's targets:", ""]
    lines += summary_table(a["summary"], probe)
    lines += ["", "- probe cost: " + probe_figures(probe)[2] + ".",
              "", "The model's first decision, for the mode that ran, against what happened "
              "(error = (predicted - measured) / measured):", ""]
    lines += prediction_table(a["predictions"], a["precopy_predictions"])
    return lines, regret.json_safe(a)
