"""build/compare/report.md from tools/compare.py's results: both sides per cell and
their ratios. Stdlib only; render(results) -> markdown text.
"""

PAIRS = (("precopy", "precopy"), ("hybrid", "postcopy-after-pass"),
         ("postcopy", "postcopy-start"), ("auto", None))  # None: QEMU's quickest
COLUMNS = ("result", "total ms", "downtime ms", "link MB", "sent MB", "pages/s before",
           "pages/s in post-copy", "fault latency µs", "vCPU blocked ms", "verify")


def num(v, f="%.0f"):
    return "-" if v is None else f % v


def mb(v):
    return num(None if v is None else v / 1e6, "%.1f")


def latency(r):
    if r.get("fault_latency_p50_us") is not None:
        return "%s p50, %s p99" % (num(r["fault_latency_p50_us"]), num(r.get("fault_latency_p99_us")))
    if r.get("fault_latency_mean_us") is not None:
        return "%s mean" % num(r["fault_latency_mean_us"])
    return "-"


def result(r):
    s = r.get("status") or "-"
    if r.get("ran") and r["ran"] != r["mode"]:
        s += " (ran %s)" % r["ran"]
    elif s == "completed" and r["mode"] not in ("precopy", "auto") and not r.get("postcopy"):
        s += " (no post-copy)"
    if s != "completed" and r.get("error"):
        s += ": " + str(r["error"])[:80].replace("|", "/")
    return s


def row_md(r):
    side = "QEMU" if r["side"] == "qemu" else "hybridmig"
    cells = (result(r), num(r.get("total_ms")), num(r.get("downtime_ms")), mb(r.get("link_bytes")),
             mb(r.get("bytes_sent")), num(r.get("units_per_s_before")),
             num(r.get("units_per_s_postcopy")), latency(r), num(r.get("vcpu_blocked_ms")),
             r.get("verify") or "-")
    return "| %s | %s | %s |" % (side, r["mode"], " | ".join(cells))


def ratio(a, b):
    ok = a is not None and b is not None and b > 0
    return "%.2f" % (a / b) if ok else "-"


def done(rows, side, mode):
    for r in rows:
        if r["side"] == side and r["mode"] == mode and r.get("status") == "completed":
            return r
    return None


def quickest_qemu(rows):
    qs = [r for r in rows if r["side"] == "qemu" and r.get("status") == "completed"
          and r.get("total_ms") is not None]
    return min(qs, key=lambda r: r["total_ms"]) if qs else None


def ratio_line(hm, q, hm_mode, q_mode):
    if not hm or not q:
        why = "hybridmig did not complete" if not hm else "QEMU did not complete"
        return "| %s / %s | %s |" % (hm_mode, q_mode, " | ".join([why] + ["-"] * 4))
    lat = hm.get("fault_latency_p50_us"), q.get("fault_latency_mean_us")
    return "| %s / %s | %s |" % (hm_mode, q["mode"], " | ".join((
        ratio(hm.get("total_ms"), q.get("total_ms")), ratio(hm.get("downtime_ms"), q.get("downtime_ms")),
        ratio(hm.get("link_bytes"), q.get("link_bytes")),
        ratio(hm.get("units_per_s_postcopy"), q.get("units_per_s_postcopy")), ratio(*lat))))


def cell_md(c, hm_ran):
    out = ["## %s, R = %d %% of the link (%d pages/s)" % (c["cap"], c["frac"], c["rate"]), "",
           "Guest: `%s`" % c["spec"], "",
           "| side | mode | %s |" % " | ".join(COLUMNS), "|---|---|%s" % ("---|" * len(COLUMNS))]
    out += [row_md(r) for r in c["rows"]]
    short = ["%s %s %s" % ("QEMU" if r["side"] == "qemu" else "hybridmig", r["mode"],
                           num(r["units_per_s_before"])) for r in c["rows"]
             if c["rate"] and r.get("units_per_s_before") is not None
             and r["units_per_s_before"] < 0.9 * c["rate"]]
    if short:
        out += ["", "The guest wrote less than R before the migration (pages/s): %s." % ", ".join(short)]
    if hm_ran:
        out += ["", "hybridmig / QEMU (below 1: hybridmig less; for the guest's rate, above 1: "
                "hybridmig's guest faster):", "",
                "| hybridmig / QEMU | total | downtime | link bytes | pages/s in post-copy | "
                "fault latency (p50 / mean) |", "|---|---|---|---|---|---|"]
        for hm_mode, q_mode in PAIRS:
            q = done(c["rows"], "qemu", q_mode) if q_mode else quickest_qemu(c["rows"])
            out.append(ratio_line(done(c["rows"], "hybridmig", hm_mode), q, hm_mode,
                                  q_mode or "QEMU's quickest"))
    return out + [""]


def header_md(res):
    out = ["# QEMU and hybridmig side by side", "",
           "`make compare` (tools/compare.py), %s. Host: %s. %s with `-accel %s`; %s." % (
               res["when"], res["host"], res["qemu_version"], res["accel"], res["hybridmig_version"]), ""]
    if res["accel"] != "kvm":
        out += ["**QEMU ran under software emulation (`--accel tcg`): a functional check of the "
                "harness; its figures say nothing about QEMU's performance, and ratios against "
                "hybridmig on KVM mean nothing.**", ""]
    if res.get("hybridmig_skipped"):
        out += ["**hybridmig side skipped: %s.**" % res["hybridmig_skipped"], ""]
    return out


NOTES = """Workload: the dirtier test guest, {mem_mib} MiB of RAM, 1 vCPU, working set {wss_mib} MiB,
pattern `{pattern}`: it writes its whole working set once at full speed (`prefill=1`), then R
pages/s (R = 0: nothing more, `fill=1`). Each migration starts once the prefill is done and the
rate has settled {settle_s} s. Link: tools/testnet.sh's veth pair, a tbf cap each way; QEMU's
`max-bandwidth` is the cap, hybridmig measures the link; downtime limit {limit_ms} ms on both
sides; {timeout_s} s at most per migration (a pre-copy that has not converged by then is
cancelled). QEMU migrates over plain TCP; hybridmig {hm_transport}.

QEMU boots the same dirtier code as a multiboot image (tools/mbimage, guest/mb_stub.S: a ring-0
stub copies the boot info, GDT, TSS and page tables hybridmig's VMM builds, enters long mode and
drops to CPL 3). QEMU has no device window, so the image maps the window's page onto a RAM
"mailbox" page: the guest's progress stores land in RAM, its command polls read 0 (run), its block
requests return at once (where it would sleep under hybridmig it spins), nothing exits. Its
progress is read from the mailbox over QMP (`xp`).

Figures. total: from the start to the end of the migration (QEMU `total-time`; hybridmig
`total_ms`). downtime: each tool's own (QEMU `downtime`: for post-copy, the stop until the device
state is sent; hybridmig `downtime_ms`: the source pause less half the RTT). link MB: bytes through
the test link both ways (veth counters, headers included), the same measure for both. sent MB: each
tool's own count (QEMU `ram.transferred`; hybridmig `bytes_wire`). pages/s: the guest's pages
written per second, before the migration and during post-copy (QEMU: the destination's mailbox
sampled every 0.1 s while post-copy is active and the guest runs there; hybridmig:
`work_units_per_s_postcopy`). "(no post-copy)": the migration ended before the switch. fault
latency: hybridmig's request-to-placed p50/p99; QEMU 7.2 keeps no per-fault latency, so its column
is the vCPU's post-copy blocktime divided by the pages the destination requested (a mean).
vCPU blocked: QEMU's `postcopy-vcpu-blocktime`, hybridmig's `vcpu_blocked_ms`. verify: hybridmig's
own verify on the destination; for QEMU the destination stopped and its generation table and {vp}
pages spread over the working set checked (pmemsave) in the dirtier's page format.
"""


def render(res):
    out = header_md(res)
    out.append(NOTES.format(mem_mib=res["mem"] >> 20, wss_mib=res["wss"] >> 20, pattern=res["pattern"],
                            settle_s=res["settle_s"], limit_ms=res["limit_ms"],
                            timeout_s=res["timeout_s"], vp=res["verify_pages"],
                            hm_transport="over TLS 1.3" if res["hm_tls"] else "over plain TCP too "
                            "(`--insecure`)"))
    for c in res["cells"]:
        out += cell_md(c, not res.get("hybridmig_skipped"))
    return "\n".join(out) + "\n"
