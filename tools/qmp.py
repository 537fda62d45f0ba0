#!/usr/bin/env python3
"""A minimal QMP client (QEMU's JSON machine protocol over a unix socket), stdlib only.

As a module (tools/compare.py):
    q = QMP(path, timeout=10)       # connects, reads the greeting, sends qmp_capabilities
    q.cmd("query-status")           # -> the "return" value; raises QMPError on "error"
    q.xp_u64(0x8008)                # one guest-physical 8-byte word, via HMP "xp /1gx"
    q.close()
As a command (tests/e2e/test_mbimage.sh), one command per call:
    qmp.py SOCKET [--wait S] COMMAND [JSON-ARGUMENTS]   prints the "return" value as JSON
    qmp.py SOCKET [--wait S] xp ADDR                    prints the word as a decimal number
--wait S retries the connection for up to S seconds (QEMU still starting).
Asynchronous events are skipped. Every read has a timeout.
"""
import json
import socket
import sys
import time


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path, timeout=10.0, wait=0.0):
        end = time.monotonic() + wait
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() >= end:
                    raise
                time.sleep(0.05)
        self.buf = b""
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError("not a QMP greeting: %r" % greeting)
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QMPError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise QMPError("%s: %s" % (name, r["error"].get("desc", r["error"])))
            # an event ({"event": ...}): not the answer

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def xp_u64(self, gpa):
        """The 8-byte word at guest-physical @gpa ("xp /1gx" prints "ADDR: 0xVALUE")."""
        out = self.hmp("xp /1gx 0x%x" % gpa)
        try:
            return int(out.split(":", 1)[1].split()[0], 16)
        except (IndexError, ValueError):
            raise QMPError("xp 0x%x: unexpected answer %r" % (gpa, out))

    def close(self):
        self.sock.close()


def main(argv):
    wait = 0.0
    if len(argv) >= 3 and argv[1] == "--wait":
        wait = float(argv[2])
        argv = argv[:1] + argv[3:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    q = QMP(argv[0], wait=wait)
    try:
        if argv[1] == "xp":
            print(q.xp_u64(int(argv[2], 0)))
        else:
            print(json.dumps(q.cmd(argv[1], **(json.loads(argv[2]) if len(argv) > 2 else {}))))
    finally:
        q.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, QMPError, ValueError) as e:
        print("qmp: %s" % e, file=sys.stderr)
        sys.exit(1)
