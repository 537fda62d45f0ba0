"""Issue 8's analysis of the policy set (pure: rows and ticks in, figures out).

Rows are grouped into cells by (network, workload). A run is "ok" when migrate
exited 0, the guest verified, the total time is within the total-time limit
(the row's --timeout) and, if it went through post-copy, the guest's slowdown
meanwhile, 1 - work_units_per_s_postcopy / work_units_per_s_before, is within
MAX_SLOWDOWN (the policy's `max_slowdown` default: README, docs/policy.md; a
run without post-copy has no slowdown). The best fixed mode is the ok one with
the least downtime; a choice's regret is (its downtime - best) / best, and a
failing or not-ok choice has failed (infinite regret; None in JSON). A cell
without an ok fixed mode is not scored.

KubeVirt's stall rule (kubevirt.py) is replayed over the cell's pre-copy
recording: when it never fires, its outcome is the pre-copy run's own; when it
fires at t_switch, an estimate: the hybrid run's downtime (the switch cost) and
total = t_switch + the time the hybrid run needed after its switch.

Prediction error: each auto run's first decision's prediction for the mode that
ran, (predicted - measured) / measured, for total time and downtime; and
pre-copy runs' predicted_downtime_ms against downtime_ms.
"""
import kubevirt

MAX_SLOWDOWN = 0.5       # policy key max_slowdown, default
WITHIN = 0.10            # target: regret within 10 %
SHARE_TARGET = 0.90      # ... in >= 90 % of the scored cells
PRED_TARGET = 0.07       # median |prediction error| <= 7 %
FIXED = ("precopy", "postcopy", "hybrid")
INF = float("inf")


def _f(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def net_label(r):
    return r["link"] + ("" if r.get("delay_ms") is None else " rtt %g" % r["rtt_nominal_ms"])


def cells(rows):
    """{(net label, workload): {mode: row}} of the policy set's rows, in run order."""
    out = {}
    for r in rows:
        if r.get("set") == "policy":
            out.setdefault((net_label(r), r["workload"]), {})[r["mode"]] = r
    return out


def outcome(r, max_slowdown=MAX_SLOWDOWN):
    """One run against the limits: {"ok", "why", "downtime_ms", "total_s", "slowdown"}."""
    m = r.get("report") or {}
    tot = _f(m.get("total_ms"))
    o = {"ok": False, "why": None, "downtime_ms": _f(m.get("downtime_ms")),
         "total_s": tot / 1e3 if tot is not None else None, "slowdown": None}
    if m.get("postcopy"):
        before, during = _f(m.get("work_units_per_s_before")), _f(m.get("work_units_per_s_postcopy"))
        if before and during is not None:
            o["slowdown"] = 1 - during / before
    limit = r.get("timeout_s")
    if r.get("migrate_rc") != 0 or not r.get("migrated"):
        o["why"] = "not-conv." if (m.get("failure") == "not_converged" or r.get("migrate_rc") == 5) \
            else "failed (%s)" % (m.get("failure") or "exit %s" % r.get("migrate_rc"))
    elif r.get("verify") != "ok":
        o["why"] = "verify %s" % r.get("verify")
    elif o["downtime_ms"] is None or o["total_s"] is None:
        o["why"] = "no figures"
    elif limit and o["total_s"] > limit:
        o["why"] = "total > %g s" % limit
    elif o["slowdown"] is not None and o["slowdown"] > max_slowdown:
        o["why"] = "slowdown %.0f%%" % (o["slowdown"] * 100)
    else:
        o["ok"] = True
        if m.get("postcopy") and o["slowdown"] is None:
            o["why"] = "slowdown not measured"
    return o


def regret(o, best):
    """Regret of an outcome against the best fixed downtime (INF when it failed)."""
    if not o or not o["ok"]:
        return INF
    if best <= 0:
        return 0.0 if o["downtime_ms"] <= 0 else INF
    return (o["downtime_ms"] - best) / best


def kubevirt_outcome(modes, ticks_of, max_slowdown=MAX_SLOWDOWN):
    """The replayed rule's outcome in one cell (modes: {mode: row}; ticks_of(row) ->
    its ticks or []). None when there is no pre-copy recording to replay."""
    pre = modes.get("precopy")
    tk = ticks_of(pre) if pre else []
    rp = kubevirt.replay(tk) if tk else None
    if not rp or not rp["points"]:
        return None
    out = {"replay": rp, "estimated": rp["fired"]}
    if not rp["fired"]:
        out.update(outcome(pre, max_slowdown))
        return out
    hyb = modes.get("hybrid")
    ho = outcome(hyb, max_slowdown) if hyb else None
    pc_s = kubevirt.postcopy_duration(ticks_of(hyb)) if hyb else None
    base = {"ok": False, "why": None, "downtime_ms": None, "total_s": None, "slowdown": None}
    out.update(base)
    if not hyb or not hyb.get("migrated") or hyb.get("verify") != "ok" or pc_s is None \
            or ho["downtime_ms"] is None:
        out.update(why="no estimate: the hybrid run did not go through post-copy with a recording",
                   estimated=False, unknown=True)
        return out
    out.update(downtime_ms=ho["downtime_ms"], total_s=rp["switch_s"] + pc_s, slowdown=ho["slowdown"])
    limit = pre.get("timeout_s")
    if limit and out["total_s"] > limit:
        out["why"] = "total > %g s" % limit
    elif out["slowdown"] is not None and out["slowdown"] > max_slowdown:
        out["why"] = "slowdown %.0f%%" % (out["slowdown"] * 100)
    else:
        out["ok"] = True
    return out


def compare(a, b):
    """auto's regret a against KubeVirt's b: 'better', 'same' (within WITHIN of
    the best, or both failed) or 'worse'."""
    if a == INF and b == INF:
        return "same"
    if INF not in (a, b) and abs(a - b) <= WITHIN:
        return "same"
    return "better" if a < b else "worse"


def score(modes, ticks_of, max_slowdown=MAX_SLOWDOWN):
    """One cell: the fixed modes' outcomes, the best, auto's regret, KubeVirt's."""
    fixed = {m: outcome(modes[m], max_slowdown) for m in FIXED if m in modes}
    ok = [(o["downtime_ms"], m) for m, o in fixed.items() if o["ok"]]
    c = {"fixed": fixed, "best_mode": None, "best_downtime_ms": None, "scored": bool(ok),
         "auto": None, "auto_mode": None, "auto_regret": None, "auto_failed": None,
         "kubevirt": None, "kubevirt_regret": None, "kubevirt_failed": None, "auto_vs_kubevirt": None}
    if "auto" in modes:
        c["auto"] = outcome(modes["auto"], max_slowdown)
        c["auto_mode"] = (modes["auto"].get("report") or {}).get("mode")
    c["kubevirt"] = kubevirt_outcome(modes, ticks_of, max_slowdown)
    if not ok:
        return c
    best, c["best_mode"] = min(ok)
    c["best_downtime_ms"] = best
    if c["auto"] is not None:
        c["auto_regret"] = regret(c["auto"], best)
        c["auto_failed"] = c["auto_regret"] == INF
    kv = c["kubevirt"]
    if kv is not None and not kv.get("unknown"):
        c["kubevirt_regret"] = regret(kv, best)
        c["kubevirt_failed"] = c["kubevirt_regret"] == INF
        if c["auto_regret"] is not None:
            c["auto_vs_kubevirt"] = compare(c["auto_regret"], c["kubevirt_regret"])
    return c


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def _err(pred, meas):
    pred, meas = _f(pred), _f(meas)
    if pred is None or meas is None or meas <= 0 or pred < 0:
        return None
    return (pred - meas) / meas


def prediction(r):
    """An auto run's first decision against what happened, or None (did not move,
    or no decision with a prediction for the mode that ran)."""
    m = r.get("report") or {}
    dec = m.get("decisions") or []
    if r.get("mode") != "auto" or not r.get("migrated") or not dec:
        return None
    ran = m.get("mode")
    p = ((dec[0].get("predicted") or {}).get(ran)) or {}
    tot = _f(m.get("total_ms"))
    e = {"id": r["id"], "mode": ran, "predicted_total_s": _f(p.get("total_s")),
         "total_s": tot / 1e3 if tot is not None else None,
         "predicted_downtime_ms": _f(p.get("downtime_ms")), "downtime_ms": _f(m.get("downtime_ms"))}
    e["total_error"] = _err(e["predicted_total_s"], e["total_s"])
    e["downtime_error"] = _err(e["predicted_downtime_ms"], e["downtime_ms"])
    return e


def precopy_prediction(r):
    m = r.get("report") or {}
    if r.get("mode") != "precopy" or not r.get("migrated") or m.get("postcopy"):
        return None
    e = _err(m.get("predicted_downtime_ms"), m.get("downtime_ms"))
    return None if e is None else {"id": r["id"], "predicted_downtime_ms": _f(m.get("predicted_downtime_ms")),
                                   "downtime_ms": _f(m.get("downtime_ms")), "error": e}


def _share(cs, key):
    scored = [c for c in cs if c[key] is not None]
    within = [c for c in scored if c[key] <= WITHIN]
    med = median([c[key] for c in scored])
    return {"scored": len(scored), "within": len(within),
            "share": len(within) / len(scored) if scored else None,
            "failed": sum(1 for c in scored if c[key] == INF),
            "median_regret": med, "median_infinite": med == INF}


def summary(scored_cells, preds, pre_preds):
    """The figures against the issue's targets (scored_cells: [(key, score)])."""
    cs = [c for _, c in scored_cells]
    auto = _share(cs, "auto_regret")
    kv = _share(cs, "kubevirt_regret")
    vs = [c["auto_vs_kubevirt"] for c in cs if c["auto_vs_kubevirt"]]
    tally = {k: vs.count(k) for k in ("better", "same", "worse")}
    auto_only_fail = sum(1 for c in cs if c["auto_vs_kubevirt"] == "worse" and c["auto_failed"])
    te = [abs(p["total_error"]) for p in preds if p["total_error"] is not None]
    de = [abs(p["downtime_error"]) for p in preds if p["downtime_error"] is not None]
    s = {"auto": auto, "kubevirt": kv, "auto_vs_kubevirt": tally,
         "not_scored": [list(k) for k, c in scored_cells if not c["scored"]],
         "failed_choices": [list(k) for k, c in scored_cells if c["auto_failed"]],
         "prediction_total": {"runs": len(te), "median_abs_error": median(te)},
         "prediction_downtime": {"runs": len(de), "median_abs_error": median(de)},
         "precopy_prediction": {"runs": len(pre_preds),
                                "median_abs_error": median([abs(p["error"]) for p in pre_preds])}}
    s["targets"] = {
        "within_10pct_in_90pct": auto["share"] is not None and auto["share"] >= SHARE_TARGET,
        "no_failed_choice": auto["scored"] > 0 and auto["failed"] == 0,
        "beats_kubevirt": bool(vs) and tally["better"] > tally["worse"] and auto_only_fail == 0,
        "prediction_total_7pct": bool(te) and median(te) <= PRED_TARGET,
        "prediction_downtime_7pct": bool(de) and median(de) <= PRED_TARGET,
    }
    return s


def _clean(v):
    """JSON-safe: an infinite regret becomes None (its *_failed flag says why)."""
    if isinstance(v, float) and v == INF:
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def analyse(rows, ticks_of, max_slowdown=MAX_SLOWDOWN):
    """Everything for report.md and results.json's "policy" (floats may be INF;
    json_safe() before writing)."""
    scored = [(k, score(modes, ticks_of, max_slowdown)) for k, modes in cells(rows).items()]
    pol = [r for r in rows if r.get("set") == "policy"]
    preds = [p for p in (prediction(r) for r in pol) if p]
    pre = [p for p in (precopy_prediction(r) for r in pol) if p]
    return {"max_slowdown": max_slowdown, "cells": scored, "predictions": preds,
            "precopy_predictions": pre, "summary": summary(scored, preds, pre)}


def json_safe(a):
    out = dict(a, cells=[{"net": k[0], "workload": k[1], **c} for k, c in a["cells"]])
    return _clean(out)
