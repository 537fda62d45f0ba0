"""The per-set tables of report.md (markdown), from the rows of results.json
(each already derived: derive.derive)."""
import derive
import probe_cost
import prom


def f(v, fmt="%.1f"):
    """A figure, or '-' when there is none."""
    if v is None:
        return "-"
    try:
        return fmt % v
    except TypeError:
        return str(v)


def md(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _m(r, k, fmt="%.1f", scale=1.0):
    v = (r.get("report") or {}).get(k)
    return f(v * scale if isinstance(v, (int, float)) and not isinstance(v, bool) else v, fmt)


def _d(r, k, fmt="%.2f", scale=1.0):
    v = (r.get("derived") or {}).get(k)
    return f(v * scale if isinstance(v, (int, float)) and not isinstance(v, bool) else v, fmt)


def _verify(r):
    v = r.get("verify") or "-"
    return v + " (src)" if r.get("verify_on") == "source" else v


def _load(r):
    w = r["workload"]
    return "dirtier %s%%" % w if w[:1].isdigit() else w


def case(r):
    net = r["link"] + ("" if r.get("delay_ms") is None else " rtt %g" % r["rtt_nominal_ms"])
    return "%s %s %s %s" % (net, r["mem"], r["workload"], r["mode"])


def vmm(v):
    gib = 4096 / 2 ** 30
    out = ["| figure | median | runs |", "|---|---|---|"]
    w = v.get("write") or {}
    if "error" in w:
        out.append("| write rate | failed: %s | |" % w["error"])
    elif w:
        t1, t2 = w["window_s"]
        runs = ", ".join(f(x["guest_pages_per_s"], "%.0f") for x in w["runs"])
        out.append("| guest writes (dirtier seq, wss %s in %s, t=%g..%g s), pages/s | %s (%s GiB/s) | %s |"
                   % (w["wss"], w["mem"], t1, t2, f(w["guest_pages_per_s"], "%.0f"),
                      f(w["guest_pages_per_s"] and w["guest_pages_per_s"] * gib, "%.2f"), runs))
        runs = ", ".join(f(x["host_pages_per_s"], "%.0f") for x in w["runs"])
        out.append("| one host thread, same writes (tools/bench_hostwrite), pages/s | %s (%s GiB/s) | %s |"
                   % (f(w["host_pages_per_s"], "%.0f"),
                      f(w["host_pages_per_s"] and w["host_pages_per_s"] * gib, "%.2f"), runs))
        out.append("| guest / host | %s | verify: %s |" % (
            f(w["guest_over_host"], "%.3f"), ", ".join(str(x["verify"]) for x in w["runs"])))
    for io in v.get("io") or []:
        if "error" in io or not isinstance(io, dict):
            continue
        out.append("| io=%d MB/s (wss %s, t=%g..%g s): units/s, I/O MB/s achieved, ring full | "
                   "%s, %s, %s | verify: %s |" % (
                       io["io"], io["wss"], io["window_s"][0], io["window_s"][1],
                       f(io["units_per_s"], "%.0f"), f(io["io_mb_per_s"], "%.1f"), f(io["ring_full"], "%.0f"),
                       ", ".join(str(x["verify"]) for x in io["runs"])))
    if isinstance(v.get("io"), dict) and "error" in v["io"]:
        out.append("| I/O device | failed: %s | |" % v["io"]["error"])
    fp = v.get("first") or {}
    if "error" in fp:
        out.append("| time to first progress | failed: %s | |" % fp["error"])
    elif fp:
        out.append("| first progress report, %s guest: first_progress_ms / wall clock ms (exec to status "
                   "showing work_units > 0; last poll ms) | %s / %s (%s) | %s |" % (
                       fp["mem"], f(fp["first_progress_ms"], "%.3f"), f(fp["wall_ms"], "%.1f"),
                       f(fp["last_poll_ms"], "%.2f"),
                       ", ".join(f(x["wall_ms"], "%.1f") for x in fp["runs"])))
    return out + _probe(v.get("probe") or {})


def _probe(p):
    """The probe part: guest rate with nothing, the harvest and the eBPF probe measuring."""
    if "error" in p:
        return ["| probe cost | failed: %s | |" % p["error"]]
    if not p:
        return []
    sm = probe_cost.summary(p)
    med, runs = sm["median_units_per_s"], p["units_per_s"]
    out = ["| guest units/s (%s in %s; %d rounds, t=%g..%g s of each trace), %s | %s | %s |" % (
        p["spec"], p["mem"], p["rounds"], p["window_s"][0], p["window_s"][1], k, f(med.get(k), "%.0f"),
        ", ".join(f(x, "%.0f") for x in runs.get(k, []))) for k in ("none", "harvest", "bpf")]
    out.append("| the eBPF probe's cost to the guest, dirty tracking included (bpf against none; "
               "target < 3 %%) | %s %% | verify: %s |" % (f(sm["probe_cost_pct"], "%.1f"), p.get("verify")))
    out.append("| the fallback's cost (harvest every 100 ms, against none) | %s %% | |"
               % f(sm["harvest_cost_pct"], "%.1f"))
    for name, ns in sorted((p.get("bpf_ns_per_event") or {}).items()):
        out.append("| %s, run time per event (kernel BPF statistics) | %s ns | |" % (name, f(ns, "%.0f")))
    return out


def mig(rows):
    head = ["link", "RAM", "workload", "pages/s", "mode", "warm s", "result", "total s", "downtime ms",
            "predicted ms", "guest pause ms", "rounds", "wire MiB", "wire/raw", "zero pages", "Mbit/s",
            "avg Gbit/s", "link use", "wire/nz", "verify"]
    body = [[r["link"], r["mem"], _load(r), r["rate_pages"] or "-", r["mode"], f(r.get("warm_s")),
             derive.result(r), _d(r, "total_s", "%.1f"), _m(r, "downtime_ms"),
             _m(r, "predicted_downtime_ms"), _m(r, "guest_pause_ms"), _m(r, "rounds", "%d"),
             _m(r, "bytes_wire", "%.0f", 2 ** -20), _d(r, "wire_over_raw", "%.3f"), _m(r, "zero_pages", "%d"),
             _m(r, "bandwidth_mbps", "%.0f"), _d(r, "avg_gbps"), _d(r, "link_use", "%.0f%%", 100),
             _d(r, "wire_per_nonzero_page"), _verify(r)] for r in rows]
    out = md(head, body)
    out += ["", "link use = bytes_wire x 8 / total s / the link (its cap; uncapped: what one TCP stream "
            "does on plain veth). wire/nz = bytes_wire / (non-zero pages sent x 4096), exact only when no "
            "page is sent twice (idle). total s includes the ~1 s after the switch-over in which the "
            "destination measures the guest's rate, so link use is understated by about 1 s / total s."]
    for r in rows:
        rp = (r.get("report") or {}).get("round_pages")
        if r.get("migrated") and rp:
            rp = rp[:6] + ["..."] + rp[-6:] if len(rp) > 14 else rp
            out.append("- rounds, %s: %s" % (case(r), " ".join(str(x) for x in rp)))
    return out


def _targets(r):
    tg = r.get("targets") or {}
    return " ".join(k + ("." if k not in tg else ("+" if tg[k]["ok"] else "-")) for k, _ in derive.TARGETS)


def postcopy(rows, floor):
    out = []
    if floor and floor.get("runs"):
        out.append("Floor (tools/bench_uffd, median of %d): fault->placed p50 %s us, p99 %s us, max %s us; "
                   "per page %s us." % (len(floor["runs"]), f(floor["p50_us"], "%g"), f(floor["p99_us"], "%g"),
                                        floor["max_us"], f(floor["per_page_us"])))
    elif floor:
        out.append("Floor: bench_uffd failed (%s); target F not checked." % floor.get("error"))
    out.append("")
    head = ["link", "RTT ms", "RAM", "workload", "mode", "result", "total s", "target s", "downtime ms",
            "guest pause ms", "p50 us", "p99 us", "faults/wss", "wire MiB", "link use", "work", "verify",
            "targets"]
    body = [[r["link"], "%g" % r["rtt_nominal_ms"], r["mem"], r["workload"], r["mode"], derive.result(r),
             _d(r, "total_s"), _d(r, "total_target_s"), _m(r, "downtime_ms", "%.3f"), _m(r, "guest_pause_ms"),
             _m(r, "fault_latency_p50_us", "%d"), _m(r, "fault_latency_p99_us", "%d"),
             _d(r, "remote_fault_share", "%.1f%%", 100), _m(r, "bytes_wire", "%.0f", 2 ** -20),
             _d(r, "link_use", "%.0f%%", 100), _d(r, "work_ratio"), _verify(r), _targets(r)] for r in rows]
    out += md(head, body)
    out += ["", "RTT: 0.1 ms direct, 2 x delay + 0.1 over the delay line. target s = 1.1 x touched RAM "
            "(the source's RssAnon before migrate) x 8 / cap. faults/wss = remote faults / working-set pages. "
            "work = the guest's rate during post-copy / before (pre-copy: during / before). targets: X+ met, "
            "X- missed, X. not applicable.", "", "Targets:"]
    for k, name in derive.TARGETS:
        met = [r for r in rows if k in (r.get("targets") or {}) and r["targets"][k]["ok"]]
        miss = [r for r in rows if k in (r.get("targets") or {}) and not r["targets"][k]["ok"]]
        state = "MET" if met and not miss else ("MISSED" if miss and not met else ("PARTLY MET" if met else "n/a"))
        out.append("- %s %s: %s in %d of %d runs it applies to" % (k, name, state, len(met), len(met) + len(miss)))
        for r in miss[:12]:
            t = r["targets"][k]
            out.append("  - missed: %s: %s vs %s" % (case(r), derive.fmt_target(k, t["value"]),
                                                      derive.fmt_target(k, t["limit"])))
    for r in rows:
        if r["mode"] == "hybrid" and r.get("migrated") and not (r.get("report") or {}).get("postcopy"):
            out.append("- hybrid finished in pre-copy: %s, downtime %s ms (predicted %s)" % (
                case(r), _m(r, "downtime_ms", "%.3f"), _m(r, "predicted_downtime_ms")))
        wu, rate = r.get("warm_work_units_per_s"), r.get("rate_pages")
        if r["workload"].startswith("seq") and wu is not None and rate and wu < 0.9 * rate:
            out.append("- guest below its set rate: %s: %s of %d pages/s before migrating" % (case(r), wu, rate))
    return out


def wan(rows):
    head = ["RTT ms", "workload", "mode", "ran", "exit", "verify", "total ms", "downtime ms", "predicted ms",
            "faults", "faults/s", "blocked RTTs", "prefetched", "work/s before", "during post-copy"]
    body = [["%.0f" % r["rtt_nominal_ms"], r["workload"], r["mode"], _m(r, "mode", "%s"),
             f(r.get("migrate_rc"), "%d"), _verify(r), _m(r, "total_ms", "%.0f"), _m(r, "downtime_ms"),
             _m(r, "predicted_downtime_ms"), _m(r, "remote_faults", "%d"), _m(r, "remote_faults_per_s"),
             _m(r, "vcpu_blocked_rtts"), _m(r, "pages_prefetched", "%d"), _m(r, "work_units_per_s_before", "%.0f"),
             _m(r, "work_units_per_s_postcopy", "%.0f")] for r in rows]
    return md(head, body)


def failures(rows):
    out = []
    for r in rows:
        if not r.get("migrated"):
            exp = " (expected: pre-copy of a writer faster than the link)" if (
                r["mode"] == "precopy" and r["set"] == "postcopy") else ""
            out.append("- did not migrate: %s %s: %s%s" % (r["set"], case(r), r.get("error"), exp))
        elif r.get("verify") != "ok":
            out.append("- VERIFY %s: %s %s (on the %s, %s bad pages)" % (
                r.get("verify"), r["set"], case(r), r.get("verify_on"), r.get("verify_bad_pages")))
    busy = [r for r in rows if r.get("other_hybridmig_procs") or r.get("busy_procs")]
    if busy:
        out.append("- warning: %d of %d runs started while other hybridmig processes or test runs were "
                   "on this host (figures skewed)" % (len(busy), len(rows)))
    return out


def latency(r, h):
    """One row of the fault-latency table."""
    return [r["id"], h.get("count"), f(prom.mean_us(h), "%.0f"), f(prom.quantile_bound(h, 0.5), "%g"),
            f(prom.quantile_bound(h, 0.99), "%g"),
            "%s / %s" % (_m(r, "fault_latency_p50_us", "%d"), _m(r, "fault_latency_p99_us", "%d")),
            f(h.get("missing_pages"), "%d")]
