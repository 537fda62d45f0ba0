"""A migration's timeline, from the tick lines of `migrate --record FILE`.

    {"type":"tick","t_s":1.234,"phase":"postcopy","round":3,"bytes_wire":...,
     "pages_sent":...,"pages_pushed":...,"pages_requested":...,"pusher_gfn":...,
     "pages_owed":...,"guest_units":...,"guest_on":"destination","remote_faults":...}

about every 100 ms (irregular intervals happen) from the start of the migration
to its end, and one at each change of phase (docs/json.md); the other lines of
the file (policy, input, decision) are skipped. Counters are cumulative; a rate
is the difference between two consecutive ticks over their t_s difference, and
only where both ticks carry the counter (null is missing, not 0).
"""
import json

RATES = {  # name: (counter, factor): wire in Mbit/s (10^6 bits), the rest per second
    "wire_mbps": ("bytes_wire", 8e-6),
    "faults_per_s": ("remote_faults", 1.0),
    "units_per_s": ("guest_units", 1.0),
    "pushed_per_s": ("pages_pushed", 1.0),
}


MIN_DT_S = 0.02  # shorter intervals are folded into the next one (see rates)
# After the switch the destination reports its guest's units and its faults
# about every 100 ms (PROGRESS); ticks come about every 100 ms too, so an
# interval of one tick holds zero or two reports and the rate swings between
# 0 and twice the truth. These counters are read over at least this long.
REPORTED = {"guest_units": 0.3, "remote_faults": 0.3}
BEFORE = ("connecting", "checks", "precopy")  # the guest runs on the source, unpaused


def ticks(path):
    """The tick lines of a record file, in time order (unreadable lines skipped)."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for ln in f:
                try:
                    o = json.loads(ln)
                except ValueError:
                    continue
                if isinstance(o, dict) and o.get("type") == "tick" and _num(o.get("t_s")):
                    out.append(o)
    except OSError:
        return []
    out.sort(key=lambda o: o["t_s"])
    return out


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def rates(tk, counter, factor=1.0):
    """[(t_mid, rate)] for each pair of consecutive ticks that both carry counter.
    A tick closer than MIN_DT_S to the one before (the extra tick at a change of
    phase; for the destination's REPORTED counters, closer than their window)
    is folded into the next interval instead of making a spike of its own; a
    tick without the counter breaks the series."""
    min_dt = REPORTED.get(counter, MIN_DT_S)
    out, a = [], None
    for b in tk:
        if not _num(b.get(counter)):
            a = None
            continue
        if a is None:
            a = b
            continue
        dt = b["t_s"] - a["t_s"]
        if dt < min_dt - 1e-9:  # 0.1 steps in binary floating point
            continue
        out.append(((a["t_s"] + b["t_s"]) / 2, (b[counter] - a[counter]) / dt * factor))
        a = b
    return out


def span_rate(tk, counter, t0, t1, factor=1.0):
    """The mean rate of counter between t0 and t1: its first and last values in
    [t0, t1] (ticks without it skipped); None with fewer than two."""
    pts = [(o["t_s"], o[counter]) for o in tk if t0 <= o["t_s"] <= t1 and _num(o.get(counter))]
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return None
    return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0]) * factor


def phases(tk):
    """[(t_s, phase)] at each change of phase."""
    out = []
    for o in tk:
        if not out or o.get("phase") != out[-1][1]:
            out.append((o["t_s"], o.get("phase")))
    return out


def _in(pts, t0, t1):
    return [v for t, v in pts if t0 <= t <= t1]


def summary(tk):
    """Figures of one timeline (None where they do not apply)."""
    if not tk:
        return None
    t_first, t_last = tk[0]["t_s"], tk[-1]["t_s"]
    gaps = [b["t_s"] - a["t_s"] for a, b in zip(tk, tk[1:])]
    pc = [o["t_s"] for o in tk if o.get("phase") == "postcopy"]
    s = {"ticks": len(tk), "duration_s": t_last - t_first, "max_gap_s": max(gaps) if gaps else None,
         "switch_s": None, "postcopy_s": None, "wire_mbps_postcopy": None, "faults_per_s_postcopy": None,
         "units_per_s_postcopy": None, "min_units_per_s_postcopy": None, "owed_at_switch": None,
         "pusher_last_gfn": None}
    wire = rates(tk, "bytes_wire", 8e-6)
    faults = rates(tk, "remote_faults")
    units = rates(tk, "guest_units")
    s["peak_wire_mbps"] = max((v for _, v in wire), default=None)
    s["peak_faults_per_s"] = max((v for _, v in faults), default=None)
    before = [o for o in tk if o.get("phase") in BEFORE]
    s["units_per_s_before"] = span_rate(before, "guest_units", t_first, t_last)
    if not pc:
        return s
    t0, t1 = pc[0], pc[-1]
    s.update(switch_s=t0, postcopy_s=t1 - t0,
             wire_mbps_postcopy=span_rate(tk, "bytes_wire", t0, t1, 8e-6),
             faults_per_s_postcopy=span_rate(tk, "remote_faults", t0, t1),
             units_per_s_postcopy=span_rate(tk, "guest_units", t0, t1),
             min_units_per_s_postcopy=min(_in(units, t0, t1), default=None))
    owed = [o["pages_owed"] for o in tk if o.get("phase") == "postcopy" and _num(o.get("pages_owed"))]
    s["owed_at_switch"] = owed[0] if owed else None
    gfn = [o["pusher_gfn"] for o in tk if _num(o.get("pusher_gfn"))]
    s["pusher_last_gfn"] = gfn[-1] if gfn else None
    return s


def series(tk):
    """For the plot: (t_mid, rate) rows of wire Mbit/s, faults/s and units/s, one
    list each (their ticks differ: REPORTED counters use longer intervals), and
    (t, pusher gfn, pages owed) per tick (None where missing)."""
    cols = [rates(tk, c, f) for c, f in
            (RATES["wire_mbps"], RATES["faults_per_s"], RATES["units_per_s"])]
    page_rows = [(o["t_s"], o.get("pusher_gfn") if _num(o.get("pusher_gfn")) else None,
                  o.get("pages_owed") if _num(o.get("pages_owed")) else None) for o in tk]
    return cols, page_rows
