"""Processes of a benchmark run, and their bounds.

Every process started here is the leader of its own session (start_new_session),
is registered, is waited for with a timeout, and is killed with its whole
process group on the way out (stop_all), whatever the way out: the end, an
error, a signal or a watchdog. Also: the test network (tools/testnet.sh), TLS
credentials (tools/mkcerts.sh), the control socket, the destination's metrics.
"""
import json
import os
import re
import signal
import socket
import subprocess
import time

from settings import ROOT

_procs = []  # Popen objects still to reap


class Interrupted(BaseException):
    """A signal (SIGINT, SIGTERM, SIGHUP) or a watchdog: unwind and clean up."""


class Watchdog(Interrupted):
    """A set ran past its time."""


def _on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def _on_alarm(signum, frame):
    raise Watchdog("watchdog")


def install_signals():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)


def quiet_signals():
    """During the clean-up: no second interruption (every step of it is bounded)."""
    signal.alarm(0)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)


def in_ns(ns, args):
    return ["ip", "netns", "exec", ns] + list(args) if ns else list(args)


def spawn(args, log, ns=None, out=None):
    """Start args (in namespace ns) in the background; stderr (and stdout, unless
    out names a file) to the file log."""
    with open(log, "ab") as lf, open(out or os.devnull, "wb") as of:
        p = subprocess.Popen(in_ns(ns, args), stdin=subprocess.DEVNULL,
                             stdout=of if out else lf, stderr=lf, start_new_session=True)
    _procs.append(p)
    return p


def reap(p, grace=2.0):
    """TERM the process group, KILL it after grace seconds, wait for the leader."""
    if p.poll() is None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)
            except OSError:
                pass
            try:
                p.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    if p in _procs:
        _procs.remove(p)


def wait_gone(p, secs):
    """Wait up to secs for p to exit by itself, then reap it anyway. Its exit status."""
    try:
        p.wait(secs)
    except subprocess.TimeoutExpired:
        pass
    reap(p)
    return p.returncode


def stop_all():
    for p in list(reversed(_procs)):
        reap(p)


def run_bounded(args, timeout, out, err, ns=None):
    """Run to completion, stdout and stderr to files; 124 when it had to be killed."""
    p = spawn(args, err, ns, out)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        reap(p)
        return 124
    reap(p)
    return p.returncode


def capture(args, timeout, check=True):
    """Run a short command, its stdout as text. subprocess.run kills it on a timeout
    or an exception (a signal included)."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args[:3]), r.returncode,
                                                (r.stderr or r.stdout).strip()[-400:]))
    return r.stdout.strip()


def wait_for(pred, secs, step=0.1):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def ctl(sock, cmd, timeout=10.0, **kw):
    """One request on a control socket; its reply, or {} on any failure."""
    req = dict(kw, cmd=cmd)
    end = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock)
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while b"\n" not in buf and time.monotonic() < end:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])
    except (OSError, ValueError):
        return {}


def tail(path, n=3):
    try:
        with open(path, errors="replace") as f:
            lines = [ln.rstrip() for ln in f if ln.strip()]
        return " | ".join(lines[-n:])
    except OSError:
        return ""


class Testnet:
    """tools/testnet.sh: NAME-a (source) and NAME-b (destination)."""

    def __init__(self, name):
        self.name = name
        self.key = None
        self.a = self.b = None
        self.cmd = ["bash", os.path.join(ROOT, "tools", "testnet.sh")]

    def up(self, key):
        """key = (tc rate or None, one-way delay in ms or None); a no-op if already so."""
        if key == self.key:
            return
        self.down()
        rate, delay = key
        args = ["up", self.name] + (["--rate", rate] if rate else [])
        args += ["--delay-ms", "%g" % delay] if delay is not None else []
        capture(self.cmd + args, 180)
        self.key = key
        self.a = capture(self.cmd + ["addr", self.name, "a"], 10)
        self.b = capture(self.cmd + ["addr", self.name, "b"], 10)

    def down(self):
        if self.key is not None:
            capture(self.cmd + ["down", self.name], 60, check=False)
        self.key = None

    def ns(self, side):
        return "%s-%s" % (self.name, side)


def make_certs(d):
    """A CA and the certificates of a source and a destination (tools/mkcerts.sh)."""
    capture(["sh", os.path.join(ROOT, "tools", "mkcerts.sh"), "--loopback", d, "src", "dst"], 60)
    return os.path.join(d, "src"), os.path.join(d, "dst")


SCRAPE = ("import sys, urllib.request as u; "
          "sys.stdout.write(u.urlopen(sys.argv[1], timeout=10).read().decode())")


def scrape(ns, url):
    """GET url from inside namespace ns (where the destination listens); text or None."""
    try:
        return capture(in_ns(ns, ["python3", "-c", SCRAPE, url]), 20)
    except (RuntimeError, subprocess.TimeoutExpired):
        return None


def busy(pattern):
    """Command lines of other processes matching pattern (test runs that share the cores)."""
    rx, me, found = re.compile(pattern), os.getpid(), []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmd and rx.search(cmd):
            found.append(cmd[:100])
    return found


def count_named(comm):
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/comm" % pid) as f:
                n += f.read().strip() == comm
        except OSError:
            continue
    return n


def rss_anon(pid):
    """RssAnon of a process, bytes (0 if unknown)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("RssAnon:"):
                    return int(ln.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def load1():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return None
