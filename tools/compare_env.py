"""What the compare_* modules share: bounded processes in the test network's
namespaces, the link's byte counters, polling. Stdlib only.

Every process starts under `timeout` in a session of its own, so that stop()
and stop_all() end it with everything it started, and it ends by itself if
this script dies without cleaning up.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTNET = ["bash", os.path.join(ROOT, "tools", "testnet.sh")]
# the benchmark harness's process handling (tools/bench/procs.py) serves here too
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))
import procs  # noqa: E402  (after the path)

wait_for = procs.wait_for  # poll pred until it is true (True) or secs have passed (False)


def sh(args, timeout=60):
    return subprocess.run(args, check=True, capture_output=True, text=True,
                          timeout=timeout).stdout.strip()


def kvm_usable():
    """(True, "") when /dev/kvm opens read-write, else (False, why)."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True, ""
    except OSError as e:
        return False, "/dev/kvm: %s" % e.strerror


def link_bytes(net):
    """Bytes through the test link so far, both directions (veth-a's counters in NET-a)."""
    out = sh(["ip", "-n", net + "-a", "-s", "-j", "link", "show", "veth-a"])
    st = json.loads(out)[0]["stats64"]
    return st["tx"]["bytes"] + st["rx"]["bytes"]


class Procs:
    """Processes started here, each in its own session, bounded by `timeout`."""

    def __init__(self):
        self.procs = []

    def spawn(self, ns, argv, log_path, limit_s):
        """Run @argv in namespace @ns (None: here) for at most @limit_s, output to @log_path."""
        pre = ["timeout", "-k", "5", str(int(limit_s))]
        if ns:
            pre += ["ip", "netns", "exec", ns]
        with open(log_path, "w") as log:
            p = subprocess.Popen(pre + list(argv), stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p, grace=5.0):
        """TERM the process's group, KILL it after @grace seconds."""
        procs.reap(p, grace)

    def stop_all(self):
        for p in self.procs:
            self.stop(p, grace=2)
        self.procs.clear()
