"""What a benchmark run measures: the sets, their sizes and bounds.

Every knob is an environment variable (so `make bench VAR=...` reaches it) with
two defaults: the full matrix, and QUICK=1's (a few cells, 256 MiB guests,
short timeouts: the whole run fits in a few minutes under a slow nested
emulator). Command-line flags of tools/bench override SETS and QUICK.
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALL_SETS = ("vmm", "mig", "postcopy", "wan", "policy")
# what a plain `make bench` runs: policy (issue 8's matrix, ~320 migrations,
# hours) only when asked for with SETS=policy
DEFAULT_SETS = ("vmm", "mig", "postcopy", "wan")

WAN_WORKLOADS = ("idle256=dirtier:wss=256M,rate=1;"
                 "zipf=dirtier:wss=256M,rate=20000,pattern=zipf;"
                 "seq=dirtier:wss=256M,rate=20000")

# name: (full default, QUICK=1 default, meaning)
KNOBS = {
    "REPS": ("3", "1", "vmm: runs per figure (the median is kept)"),
    "VMM_MEM": ("1G", "256M", "vmm: RAM of the write-rate and I/O guests"),
    "VMM_WSS": ("256M", "64M", "vmm: working set of the write-rate guest"),
    "VMM_IO": ("0 100 1000", "0 100", "vmm: I/O device rates, MB/s"),
    "VMM_FIRST_MEM": ("4G", "256M", "vmm: RAM of the time-to-first-progress guest"),
    "VMM_WINDOW": ("2 5", "1 3", "vmm: write-rate window, s of guest uptime"),
    "VMM_PROBE_MEM": ("1536M", "256M", "vmm: RAM of the probe-cost guest"),
    "VMM_PROBE_WSS": ("1G", "64M", "vmm: its random writer's working set"),
    "MODES": ("", "", "every migration set's modes (default: each set's own)"),
    "DOWNTIME": ("300", "300", "migrate --downtime-limit, ms"),
    "WARM_MAX": ("20", "5", "warm-up: at most this many s for the dirtier's first pass"),
    "SLACK_S": ("120", "120", "migrate's outer bound: its --timeout plus this, s (post-copy goes on after --timeout)"),
    "TLS": ("1", "1", "1: TLS 1.3 (tools/mkcerts.sh), 0: --insecure"),
    "TAG": ("", "", "a label stored with the rows (to compare two binaries)"),
    "MIG_LINKS": ("1gbit uncapped", "1gbit", "mig: tc tbf caps (uncapped: plain veth)"),
    "MIG_MEMS": ("1G 4G", "256M", "mig: guest RAM"),
    "MIG_LOADS": ("idle 25 75", "idle 75", "mig: idle, or dirtier at N % of the link"),
    "MIG_TIMEOUT": ("120", "30", "mig: migrate --timeout, s"),
    "UNCAPPED_REF_GBIT": ("13.0", "13.0", "mig: what one TCP stream does on plain veth"),
    "PC_PARTS": ("d1g p05 p5 d10g", "d1g", "postcopy: parts (d = direct, p = delay line)"),
    "PC_MEMS": ("1G 4G", "256M", "postcopy: guest RAM on d1g (other parts: the first)"),
    "PC_LOADS": ("idle zipf seq150 seq200", "zipf seq150", "postcopy: workloads"),
    "PC_TIMEOUT": ("60", "30", "postcopy: migrate --timeout, s (postcopy, hybrid)"),
    "PRE_TIMEOUT": ("20", "10", "postcopy: --timeout of the pre-copy seq150 runs"),
    "PRE_MEMS": ("1G", "256M", "postcopy: RAM of the pre-copy seq150 runs"),
    "WAN_DELAYS": ("10 50 75", "25", "wan: one-way delays, ms (RTT = 2 x delay)"),
    "WAN_RATE": ("1gbit", "100mbit", "wan: the line's cap"),
    "WAN_MEM": ("1G", "256M", "wan: guest RAM"),
    "WAN_MODES": ("precopy postcopy hybrid auto", "postcopy hybrid", "wan: modes"),
    "WAN_WORKLOADS": (WAN_WORKLOADS, "zipf=dirtier:wss=32M,rate=2000,pattern=zipf",
                      "wan: name=guest-spec;..."),
    "WAN_TIMEOUT": ("120", "30", "wan: migrate --timeout, s"),
    "POL_LINKS": ("1gbit 10gbit", "1gbit", "policy: tc tbf caps"),
    "POL_DELAYS": ("none 5", "none", "policy: one-way delays, ms (none: direct veth; else the delay line)"),
    "POL_MEM": ("2G", "512M", "policy: guest RAM"),
    "POL_LOADS": ("idle seq random zipf dma", "idle seq dma", "policy: workloads (seq/random/zipf: "
                  "writers at POL_RATES x POL_WSS)"),
    "POL_RATES": ("25 75 150", "150", "policy: the writers' rates, % of the link"),
    "POL_WSS": ("256M 1G", "128M", "policy: the writers' working sets"),
    "POL_DMA": ("dirtier:wss=64M,rate=1000,io=200,prefill=1", "dirtier:wss=32M,rate=1000,io=100,prefill=1",
                "policy: the heavy-DMA guest"),
    "POL_MODES": ("precopy postcopy hybrid auto", "precopy postcopy hybrid auto", "policy: modes"),
    "POL_TIMEOUT": ("120", "60", "policy: migrate --timeout, s: the total-time limit (KubeVirt's "
                    "rule needs > 40 s to fire)"),
    "FLOOR_RUNS": ("3", "1", "runs of tools/bench_uffd (the local fault floor)"),
    "BUSY_WAIT_S": ("600", "60", "wait at most this long for a quiet host"),
    "WD_VMM": ("300", "240", "watchdog of the vmm set, s"),
    "WD_MIG": ("1500", "300", "watchdog of the mig set, s"),
    "WD_POSTCOPY": ("1800", "600", "watchdog of the postcopy set, s"),
    "WD_WAN": ("3600", "300", "watchdog of the wan set, s"),
    "WD_POLICY": ("28800", "1500", "watchdog of the policy set, s"),
}
BUSY_PAT = r"make.*asan|run-tests\.sh|tests/e2e/test_|tools/bench_(tls|switch|wan)\.py|tools/compare\.py"


class Settings:
    """The knobs of one run, as strings from the environment or the defaults."""

    def __init__(self, quick, sets, env=None):
        env = os.environ if env is None else env
        self.quick = quick
        self.sets = list(sets)
        self.values = {k: env.get(k, v[1] if quick else v[0]) for k, v in KNOBS.items()}
        o = env.get("O", "build")
        self.build = o if os.path.isabs(o) else os.path.join(ROOT, o)
        self.hm = env.get("HM", os.path.join(self.build, "hybridmig"))
        self.out = env.get("OUT") or os.path.join(self.build, "bench")

    def str(self, k):
        return self.values[k]

    def int(self, k):
        return int(float(self.values[k]))

    def float(self, k):
        return float(self.values[k])

    def words(self, k):
        return self.values[k].split()

    def tool(self, name):
        return os.path.join(self.build, "tools", name)

    def as_dict(self):
        return dict(self.values, quick=self.quick, sets=self.sets)


def size_bytes(s):
    """'512M', '4G', '1024K' or a plain number -> bytes."""
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    s = s.strip().upper()
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


def size_pages(s):
    return size_bytes(s) // 4096


def half(mem):
    """Half of a guest's RAM, spelled in MiB (the working sets' rule)."""
    return "%dM" % (size_bytes(mem) // 2 // (1 << 20))


def rate_bps(rate):
    """A tc rate ('1gbit', '500mbit', '125mbps', '10kbit') -> bits/s."""
    r = rate.strip().lower()
    units = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("gbps", 8e9), ("mbps", 8e6),
             ("kbps", 8e3), ("bit", 1.0), ("bps", 8.0)]
    for suffix, mult in units:
        if r.endswith(suffix):
            return float(r[:-len(suffix)]) * mult
    return float(r)


def describe():
    """The knobs as text, for --help."""
    lines = []
    for k, (full, quick, what) in KNOBS.items():
        q = "" if quick == full else "; QUICK: %s" % quick
        shown = "none" if not full else (full if len(full) < 40 else "see settings.py")
        lines.append("  %-18s %s (default %s%s)" % (k, what, shown, q))
    return "\n".join(lines)
