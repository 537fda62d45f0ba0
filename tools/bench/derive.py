"""Derived figures and targets of a migration row (pure: from the row alone).

Figures, for a migration that moved the VM (report = migrate's final record):
  total_s           total_ms / 1000
  avg_gbps          bytes_wire * 8 / total_s / 1e9
  link_use          bytes_wire * 8 / total_s / the link's reference (its cap;
                    uncapped veth: UNCAPPED_REF_GBIT, what one TCP stream does)
  link_use_to_last_page  the same up to last_page_ms (post-copy)
  wire_over_raw     bytes_wire / bytes_raw
  wire_per_nonzero_page  bytes_wire / ((pages_sent - zero_pages) * 4096): non-zero
                    pages *sent* stand for the resident ones (exact only when
                    nothing is sent twice: the idle guest)
  downtime_over_limit
  touched_bytes     the source's RssAnon before migrate (touched RAM + a few MiB)
  total_target_s    1.1 * touched_bytes * 8 / link reference
  work_ratio        the guest's rate during post-copy (work_units_per_s_postcopy;
                    pre-copy: _during) / work_units_per_s_before
  remote_fault_share  remote_faults / working-set pages

Targets (the post-copy issue's; rows of the postcopy set, modes other than
precopy), each {"value", "limit", "ok"}:
  D  downtime_ms <= 1 ms (1 vCPU), runs that switched to post-copy
  T  total_s <= total_target_s, non-idle runs
  W  work_ratio >= 0.85 (seq) / 0.90 (others), post-copy, non-idle
  F  fault_latency_p99_us <= RTT + 2 x floor p50 (tools/bench_uffd), runs with
     remote faults
  L  link_use >= 0.90, non-idle runs
  N  remote_fault_share <= 0.10, post-copy, non-idle
"""

TARGETS = [("D", "post-copy downtime <= 1 ms (1 vCPU)"),
           ("T", "total time <= 1.1 x touched RAM / link cap"),
           ("W", "guest work rate during post-copy >= 85 % (seq) / 90 % (others) of before"),
           ("F", "fault p99 <= RTT + 2 x local uffd round trip (floor p50)"),
           ("L", "link use (bytes_wire*8/total_s / cap) >= 90 %"),
           ("N", "remote (network) faults <= 10 % of the working set")]
TARGET_SETS = ("postcopy",)


def _f(v):
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _div(a, b):
    return a / b if a is not None and b else None


def figures(r):
    """The derived figures of row r ({} when the VM did not move)."""
    m = r.get("report") or {}
    if not r.get("migrated"):
        return {}
    tot = _div(_f(m.get("total_ms")), 1e3)
    wire, ref = _f(m.get("bytes_wire")), r.get("link_ref_bps")
    bits = wire * 8 if wire is not None else None
    nz = int(m.get("pages_sent") or 0) - int(m.get("zero_pages") or 0)
    touched = r.get("src_rss_anon_bytes") or None
    pc = bool(m.get("postcopy"))
    before = _f(m.get("work_units_per_s_before"))
    during = _f(m.get("work_units_per_s_postcopy" if pc else "work_units_per_s_during"))
    rf = m.get("remote_faults")
    return {
        "total_s": tot,
        "avg_gbps": _div(_div(bits, tot), 1e9),
        "link_use": _div(_div(bits, tot), ref),
        "link_use_to_last_page": _div(_div(bits, _div(_f(m.get("last_page_ms")), 1e3)), ref),
        "wire_over_raw": _div(wire, _f(m.get("bytes_raw"))),
        "nonzero_pages_sent": nz,
        "wire_per_nonzero_page": _div(wire, nz * 4096),
        "downtime_over_limit": (_f(m.get("downtime_ms")) or 0) > r.get("downtime_limit_ms", 300),
        "touched_bytes": touched,
        "total_target_s": _div(1.1 * touched * 8, ref) if touched else None,
        "work_ratio": _div(during, before) if during is not None else None,
        "remote_fault_share": _div(_f(rf), r.get("wss_pages")),
    }


def _t(val, limit, le=True):
    if val is None or limit is None:
        return None
    return {"value": val, "limit": limit, "ok": val <= limit if le else val >= limit}


def targets(r, fig, floor_p50):
    """The targets that apply to row r, as {"D": {...}, ...}."""
    m = r.get("report") or {}
    if r.get("set") not in TARGET_SETS or r.get("mode") == "precopy" or not r.get("migrated"):
        return {}
    pc, idle = bool(m.get("postcopy")), r.get("workload") == "idle"
    tg = {}
    if pc:
        tg["D"] = _t(_f(m.get("downtime_ms")) or 0.0, 1.0)
    if not idle:
        tg["T"] = _t(fig.get("total_s"), fig.get("total_target_s"))
        tg["L"] = _t(fig.get("link_use"), 0.90, le=False)
        if pc:
            lim = 0.85 if r.get("workload", "").startswith("seq") else 0.90
            tg["W"] = _t(fig.get("work_ratio"), lim, le=False)
            tg["N"] = _t(fig.get("remote_fault_share"), 0.10)
    if pc and m.get("remote_faults") and floor_p50 is not None:
        tg["F"] = _t(_f(m.get("fault_latency_p99_us")) or 0.0,
                     r["rtt_nominal_ms"] * 1000 + 2 * floor_p50)
    return {k: v for k, v in tg.items() if v is not None}


def derive(r, floor):
    """Fill r["derived"] and r["targets"] (floor: the bench_uffd figures or None)."""
    fig = figures(r)
    r["derived"] = fig
    r["targets"] = targets(r, fig, (floor or {}).get("p50_us"))
    return r


def result(r):
    """One word for a row: post / pre (how it moved; +>limit over the downtime
    limit), not-conv. (pre-copy gave up: the VM stays on the source), FAILED."""
    if r.get("migrated"):
        m = r.get("report") or {}
        w = "post" if m.get("postcopy") else "pre"
        return w + (">limit" if (r.get("derived") or {}).get("downtime_over_limit") else "")
    if (r.get("report") or {}).get("failure") == "not_converged" or r.get("migrate_rc") == 5:
        return "not-conv."
    return "FAILED"


def fmt_target(k, v):
    if v is None:
        return "-"
    return {"D": "%.3f ms", "T": "%.2f s", "F": "%.0f us"}.get(k, "%.1f%%") % (
        v if k in "DTF" else v * 100)
