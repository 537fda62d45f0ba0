"""KubeVirt's 2026 stall rule (VEP 248, "Live Migration Stability & Convergence"),
replayed over the timeline of a pre-copy run (pure: the ticks come in as a list).

The rule, as VEP 248 gives it with its default knobs, evaluated at every
pre-copy tick of `migrate --record` (KubeVirt acts at QEMU's iteration
boundaries; the ticks come about every 100 ms, so the replay looks more often
than KubeVirt would, which can only help it):

  stalled at t   remaining(t) >= (1 - 4 %) x the least remaining bytes among
                 the ticks at least 40 s earlier (t' <= t - 40 s): 40 s
                 without 4 % of progress.
  best           at the stall: the least of that minimum and the remaining
                 bytes of the ticks of the last 40 s (the current one included).
  switch         at the first tick from the stall on whose remaining bytes are
                 within 4 % of best (remaining <= best x 1.04: a local minimum),
                 unless that tick is in a link blip: the bandwidth over the
                 last second (bytes_wire from the latest tick at least 1 s
                 earlier) below half its running average (since pre-copy
                 began). Relaxation: when best has not come back within the
                 patience (40 s, then halved each time), best becomes the least
                 level seen since the stall (and leaves that list).

Left out: the budget check against KubeVirt's completion timeout (150 s per GiB:
longer than any run here) and the pre-copy-only paths (post-copy is allowed).
"""

STALL_WINDOW_S = 40.0   # stallProgressTimeout
STALL_MARGIN = 0.04     # stallMargin, 4 %
PATIENCE_DECAY = 0.5    # patienceWindowDecayFactor
BLIP_WINDOW_S = 1.0
BLIP_DROP = 0.5
PAGE = 4096


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def precopy_points(tk):
    """[(t_s, remaining bytes, bytes_wire)] of the pre-copy ticks that carry both counters."""
    return [(o["t_s"], o["remaining_pages"] * PAGE, o["bytes_wire"]) for o in tk
            if o.get("phase") == "precopy" and _num(o.get("remaining_pages")) and _num(o.get("bytes_wire"))]


def blip(pts, i):
    """Whether pts[i] is in a link blip (False when there is not a second of history yet)."""
    t, _, w = pts[i]
    t0, _, w0 = pts[0]
    prev = [p for p in pts[:i] if p[0] <= t - BLIP_WINDOW_S]
    if not prev or t <= t0:
        return False
    tp, _, wp = prev[-1]
    last = (w - wp) / (t - tp)
    avg = (w - w0) / (t - t0)
    return last < BLIP_DROP * avg


def replay(tk):
    """Run the rule over a pre-copy run's ticks. Returns a dict:
    fired (bool), switch_s (t of the switch, or None), stall_s (t of the stall
    detection, or None), remaining_bytes (at the switch), best_bytes, blips
    (ticks where a switch was held back by a blip), points (pre-copy ticks seen)."""
    pts = precopy_points(tk)
    out = {"fired": False, "switch_s": None, "stall_s": None, "remaining_bytes": None,
           "best_bytes": None, "blips": [], "points": len(pts)}
    best = deadline = patience = None
    history = []
    for i, (t, r, _) in enumerate(pts):
        if out["stall_s"] is None:
            old = [p[1] for p in pts[:i + 1] if p[0] <= t - STALL_WINDOW_S]
            if not old or r < min(old) * (1 - STALL_MARGIN):
                continue
            recent = [p[1] for p in pts[:i + 1] if p[0] > t - STALL_WINDOW_S]
            best = min([min(old)] + recent)
            out["stall_s"] = t
            patience = STALL_WINDOW_S
            deadline = t + patience
        else:
            history.append(r)
            if r > best * (1 + STALL_MARGIN) and t >= deadline and history:
                best = min(history)
                history.remove(best)
                patience *= PATIENCE_DECAY
                deadline = t + patience
        if r <= best * (1 + STALL_MARGIN):
            if blip(pts, i):
                out["blips"].append(t)
                continue
            out.update(fired=True, switch_s=t, remaining_bytes=r, best_bytes=best)
            return out
    out["best_bytes"] = best
    return out


def postcopy_duration(tk):
    """Seconds a run spent after its switch: its last tick's t minus its first
    post-copy tick's t (None without a post-copy tick)."""
    pc = [o["t_s"] for o in tk if o.get("phase") == "postcopy"]
    if not pc or not tk:
        return None
    return tk[-1]["t_s"] - pc[0]
