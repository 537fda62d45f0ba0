"""The destination's post-copy fault-latency histogram, from its Prometheus text.

`hybridmig incoming --metrics-listen` serves (docs/metrics.md)
    hybridmig_postcopy_fault_latency_seconds_bucket{le="1e-06"} N   (cumulative)
    ... le = 2^i us up to 2^22 us, then le="+Inf"
    hybridmig_postcopy_fault_latency_seconds_sum S
    hybridmig_postcopy_fault_latency_seconds_count N
QEMU 10.1's postcopy-latency-dist buckets. Kept as per-bucket counts.
"""
import re

FAMILY = "hybridmig_postcopy_fault_latency_seconds"
_BUCKET = re.compile(r'^%s_bucket\{le="([^"]+)"\}\s+(\S+)' % FAMILY)
_PLAIN = re.compile(r"^(%s_sum|%s_count|hybridmig_incoming_postcopy_missing_pages)\s+(\S+)"
                    % (FAMILY, FAMILY))


def fault_histogram(text):
    """{"le_us": [1, 2, ..., None (+Inf)], "counts": per bucket, "count", "sum_s",
    "missing_pages"}, or None when the family is absent."""
    cum, plain = [], {}
    for ln in text.splitlines():
        m = _BUCKET.match(ln)
        if m:
            le = None if m.group(1) == "+Inf" else round(float(m.group(1)) * 1e6, 3)
            cum.append((le, int(float(m.group(2)))))
            continue
        m = _PLAIN.match(ln)
        if m:
            plain[m.group(1)] = float(m.group(2))
    if not cum:
        return None
    cum.sort(key=lambda x: float("inf") if x[0] is None else x[0])
    counts, prev = [], 0
    for _, c in cum:
        counts.append(c - prev)
        prev = c
    miss = plain.get("hybridmig_incoming_postcopy_missing_pages")
    return {"le_us": [le for le, _ in cum], "counts": counts,
            "count": int(plain.get(FAMILY + "_count", prev)),
            "sum_s": plain.get(FAMILY + "_sum"),
            "missing_pages": None if miss is None else int(miss)}


def quantile_bound(h, q):
    """The upper bound (us) of the bucket holding quantile q; None past the last
    finite bucket or without faults."""
    total = sum(h["counts"])
    if not total:
        return None
    acc = 0
    for le, c in zip(h["le_us"], h["counts"]):
        acc += c
        if acc >= q * total:
            return le
    return None


def mean_us(h):
    n = sum(h["counts"])
    return h["sum_s"] * 1e6 / n if n and h.get("sum_s") is not None else None
