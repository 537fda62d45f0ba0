"""The floor of post-copy fault latency: tools/bench_uffd (built by `make bench`),
the local userfaultfd round trip through the destination's fault thread and
placement code, FLOOR_RUNS times (30 s each at most); the median p50/p99 is the
floor that target F adds to the RTT.
"""
import os
import re
import statistics

import procs

FLOOR_RE = re.compile(r"per page ([0-9.]+) us; fault->placed p50 (\d+) us, p90 (\d+) us, "
                      r"p99 (\d+) us, max (\d+) us; (\d+) faults")


def parse(text):
    m = FLOOR_RE.search(text)
    if not m:
        return None
    return {"per_page_us": float(m.group(1)), "p50_us": int(m.group(2)), "p90_us": int(m.group(3)),
            "p99_us": int(m.group(4)), "max_us": int(m.group(5)), "faults": int(m.group(6)),
            "line": text.strip()}


def measure(s, tmp):
    """{"runs": [...], "p50_us", "p99_us", "per_page_us", "max_us"} or with "error"."""
    tool = s.tool("bench_uffd")
    r = {"tool": "tools/bench_uffd.c", "runs": []}
    if not os.access(tool, os.X_OK):
        r["error"] = "%s missing (make bench builds it)" % tool
        return r
    errs = []
    for i in range(max(1, s.int("FLOOR_RUNS"))):
        out, err = os.path.join(tmp, "floor%d.out" % i), os.path.join(tmp, "floor%d.err" % i)
        rc = procs.run_bounded([tool], 30, out, err)
        with open(out, errors="replace") as f:
            one = parse(f.read())
        if one:
            r["runs"].append(one)
        else:
            errs.append("exit %d: %s" % (rc, procs.tail(err)))
    if r["runs"]:
        for k in ("p50_us", "p99_us", "per_page_us"):
            r[k] = statistics.median(x[k] for x in r["runs"])
        r["max_us"] = max(x["max_us"] for x in r["runs"])
    else:
        r["error"] = " / ".join(errs) or "no output"
    return r
