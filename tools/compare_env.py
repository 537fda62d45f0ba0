"""What the compare_* modules share: bounded processes in the test network's
namespaces, the link's byte counters, polling. Stdlib only.

Every process starts under `timeout` in a session of its own, so that stop()
and stop_all() end it with everything it started, and it ends by itself if
this script dies without cleaning up.
"""
import json
import os
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTNET = ["bash", os.path.join(ROOT, "tools", "testnet.sh")]


def sh(args, timeout=60):
    return subprocess.run(args, check=True, capture_output=True, text=True,
                          timeout=timeout).stdout.strip()


def wait_for(pred, secs, step=0.1):
    """Poll @pred until it is true (True) or @secs have passed (False)."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


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
        if p.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(wait)
                return
            except subprocess.TimeoutExpired:
                pass

    def stop_all(self):
        for p in self.procs:
            self.stop(p, grace=2)
        self.procs.clear()
