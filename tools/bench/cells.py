"""The migration matrix: one cell per migration, for the sets mig, postcopy, wan and policy.

A cell is a plain dict (it becomes the head of its row in results.json):
  set, part, id           which set, which part of it, a unique file-safe name
  link, rate, delay_ms    the test network: tc rate (None: uncapped veth), and
                          the delay line's one-way delay (None: direct veth)
  cap_bps                 the link's nominal rate (None: uncapped)
  ref_bps                 what a dirtier rate "N % of the link" refers to
  link_ref_bps            what link use is measured against
  rtt_nominal_ms          0.1 direct; 2 x delay + 0.1 over the delay line
  mem, workload, guest    RAM, workload name, `run --guest` spec
  wss_pages, rate_pages   the dirtier's working set and rate (0 for idle)
  mode, timeout_s, downtime_limit_ms, warm
                          migrate's --mode/--timeout/--downtime-limit; warm is
                          "wss" (until the working set is written once, at most
                          WARM_MAX s; idle: 1 s) or a fixed number of seconds
"""
import re

from settings import half, rate_bps, size_pages

DIRECT_RTT_MS = 0.1


def _net(link, delay_ms=None, uncapped_ref=13e9):
    """The network part of a cell: 'uncapped' (plain veth) or a tc rate."""
    if link == "uncapped":
        return {"link": link, "rate": None, "delay_ms": None, "cap_bps": None,
                "ref_bps": 10e9, "link_ref_bps": uncapped_ref, "rtt_nominal_ms": DIRECT_RTT_MS}
    bps = rate_bps(link)
    rtt = DIRECT_RTT_MS if delay_ms is None else 2 * delay_ms + DIRECT_RTT_MS
    return {"link": link, "rate": link, "delay_ms": delay_ms, "cap_bps": bps, "ref_bps": bps,
            "link_ref_bps": bps, "rtt_nominal_ms": rtt}


def _wss_seq(mem):
    """The sequential writers' working set: 512M of 1G, 1G of 4G, else half."""
    return {"1G": "512M", "4G": "1G"}.get(mem, half(mem))


def _dirtier(wss, rate, pattern):
    return "dirtier:wss=%s,rate=%d,pattern=%s" % (wss, rate, pattern)


def _load(workload, mem, ref_bps):
    """workload -> (guest spec, wss_pages, rate_pages) for mig and postcopy."""
    if workload == "idle":
        return "idle", 0, 0
    if workload == "zipf":
        wss = half(mem)
        return _dirtier(wss, 50000, "zipf"), size_pages(wss), 50000
    m = re.fullmatch(r"(seq)?(\d+(\.\d+)?)", workload)  # seq150: 1.5 x the link; 25: 25 %
    if not m:
        raise SystemExit("bench: unknown workload %r (idle, zipf, seqN, N)" % workload)
    pct = float(m.group(2))
    rate = int(pct / 100 * ref_bps / 8 / 4096 + 0.5)
    wss = _wss_seq(mem)
    return _dirtier(wss, rate, "seq"), size_pages(wss), rate


def _cell(st, part, net, mem, workload, mode, timeout, warm="wss", guest=None):
    spec, wss, rate = guest if guest else _load(workload, mem, net["ref_bps"])
    wl = workload if not workload[0].isdigit() else "dirt" + workload
    c = {"set": st, "part": part, "id": "-".join((st, part, mem, wl, mode)).replace(".", "_")}
    c.update(net)
    c.update({"mem": mem, "workload": workload, "guest": spec, "wss_pages": wss,
              "rate_pages": rate, "mode": mode, "timeout_s": timeout, "warm": warm})
    return c


def mig_cells(s):
    """Pre-copy over a capped and an uncapped veth: link x RAM x (idle, N % of the link)."""
    modes = s.words("MODES") or ["precopy"]
    cells = []
    for link in s.words("MIG_LINKS"):
        net = _net(link, None, s.float("UNCAPPED_REF_GBIT") * 1e9)
        for mem in s.words("MIG_MEMS"):
            for load in s.words("MIG_LOADS"):
                for mode in modes:
                    cells.append(_cell("mig", link, net, mem, load, mode, s.int("MIG_TIMEOUT")))
    return cells


PC_PARTS = {  # part: (link, one-way delay ms over the delay line, or None)
    "d1g": ("1gbit", None), "p05": ("1gbit", 0.5), "p5": ("1gbit", 5.0), "d10g": ("10gbit", None),
}


def postcopy_cells(s):
    """Post-copy and hybrid (and pre-copy of seq150 on d1g, to show it does not converge)."""
    override = s.words("MODES")
    cells = []
    for part in s.words("PC_PARTS"):
        if part not in PC_PARTS:
            raise SystemExit("bench: unknown PC_PARTS entry %r (%s)" % (part, " ".join(PC_PARTS)))
        link, delay = PC_PARTS[part]
        net = _net(link, delay)
        mems = s.words("PC_MEMS") if part == "d1g" else s.words("PC_MEMS")[:1]
        for mem in mems:
            for load in s.words("PC_LOADS"):
                if load == "seq200" and part != "d1g":
                    continue
                for mode in override or ["postcopy", "hybrid"]:
                    cells.append(_cell("postcopy", part, net, mem, load, mode, s.int("PC_TIMEOUT")))
                if (not override and part == "d1g" and load == "seq150"
                        and mem in s.words("PRE_MEMS")):
                    cells.append(_cell("postcopy", part, net, mem, load, "precopy",
                                       s.int("PRE_TIMEOUT")))
    return cells


def _spec_figures(spec):
    """wss pages and rate of a 'dirtier:wss=...,rate=...' spec (0 where absent)."""
    kv = dict(p.split("=", 1) for p in spec.partition(":")[2].split(",") if "=" in p)
    wss = size_pages(kv["wss"]) if "wss" in kv else (size_pages("64M") if "dirtier" in spec else 0)
    return wss, int(kv.get("rate", "0"))


def wan_cells(s):
    """Distance: RTT x workload x mode over the delay line (tools/testnet.sh --delay-ms)."""
    modes = s.words("MODES") or s.words("WAN_MODES")
    workloads = [w.split("=", 1) for w in s.str("WAN_WORKLOADS").split(";") if "=" in w]
    cells = []
    for d in s.words("WAN_DELAYS"):
        net = _net(s.str("WAN_RATE"), float(d))
        for name, spec in workloads:
            wss, rate = _spec_figures(spec)
            for mode in modes:
                cells.append(_cell("wan", "rtt%g" % (2 * float(d)), net, s.str("WAN_MEM"), name, mode,
                                   s.int("WAN_TIMEOUT"), warm="3", guest=(spec, wss, rate)))
    return cells


POL_PATTERNS = ("seq", "random", "zipf")


def _pol_workloads(s, ref_bps):
    """[(name, (guest spec, wss pages, rate pages))] of the policy set on a link of ref_bps:
    idle; each writer pattern at each rate (% of the link) x working set, prefilled;
    the heavy-DMA guest (POL_DMA)."""
    out = []
    for load in s.words("POL_LOADS"):
        if load == "idle":
            out.append(("idle", ("idle", 0, 0)))
        elif load == "dma":
            spec = s.str("POL_DMA")
            out.append(("dma", (spec,) + _spec_figures(spec)))
        elif load in POL_PATTERNS:
            for pct in s.words("POL_RATES"):
                rate = int(float(pct) / 100 * ref_bps / 8 / 4096 + 0.5)
                for wss in s.words("POL_WSS"):
                    spec = _dirtier(wss, rate, load) + ",prefill=1"
                    out.append(("%s%s-%s" % (load, pct, wss), (spec, size_pages(wss), rate)))
        else:
            raise SystemExit("bench: unknown POL_LOADS entry %r (idle seq random zipf dma)" % load)
    return out


def policy_cells(s):
    """Issue 8: guests x links, every fixed mode and auto in each cell, all with the same
    --timeout (the total-time limit) and --downtime-limit; each run's --record is kept."""
    modes = s.words("MODES") or s.words("POL_MODES")
    cells = []
    for link in s.words("POL_LINKS"):
        for d in s.words("POL_DELAYS"):
            delay = None if d == "none" else float(d)
            net = _net(link, delay)
            part = link + ("" if delay is None else "-rtt%g" % (2 * delay))
            for name, guest in _pol_workloads(s, net["ref_bps"]):
                for mode in modes:
                    cells.append(_cell("policy", part, net, s.str("POL_MEM"), name, mode,
                                       s.int("POL_TIMEOUT"), guest=guest))
    return cells


def matrix(s, sets):
    """Every migration cell of the selected sets, in run order."""
    make = {"mig": mig_cells, "postcopy": postcopy_cells, "wan": wan_cells, "policy": policy_cells}
    cells = []
    for st in sets:
        if st in make:
            cells += make[st](s)
    return cells


def net_key(c):
    """Cells with the same key share one test network."""
    return (c["rate"], c["delay_ms"])


def describe(c):
    net = c["link"] + ("" if c["delay_ms"] is None else " delay %g ms" % c["delay_ms"])
    return "%-9s %-42s net %-22s mem %-5s %-44s mode %-8s timeout %d s" % (
        c["set"], c["id"], net, c["mem"], c["guest"], c["mode"], c["timeout_s"])
