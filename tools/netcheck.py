#!/usr/bin/env python3
"""Probes of the test network (tools/testnet.sh selftest, tests/e2e/test_wan.sh).

  netcheck.py server HOST PORT [RCVBUF]        serve T (stream) and P (ping-pong)
  netcheck.py tput HOST PORT SECS [SNDBUF [WANT_BPS]]
                                               one TCP stream: overall and second-half rate;
                                               exit 3 if the second half is below WANT_BPS
  netcheck.py rtt HOST PORT SECS [MIN_MS]      64-byte TCP ping-pong; exit 3 below MIN_MS
  netcheck.py icmp HOST COUNT [MIN_MS [WAIT_S]] ICMP echo (root); a missed answer is skipped;
                                               exit 3 below MIN_MS, 4 if nothing answered
Buffers are set with SO_SNDBUFFORCE / SO_RCVBUFFORCE (root). Prints one line
"min X ms, median Y ms, ..." or "R Mbit/s, second half R2 Mbit/s (...)".
"""
import os, socket, struct, sys, time
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
def server(host, port, rcvbuf):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf: ls.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    ls.bind((host, port)); ls.listen(16)
    print("ready", flush=True)
    buf = bytearray(1 << 20)
    while True:
        c, _ = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mode = c.recv(1)
        if mode == b"T":
            total = 0; marks = []
            while True:
                n = c.recv_into(buf)
                if not n: break
                total += n; marks.append((time.monotonic(), total))
            t0, t1 = marks[0][0], marks[-1][0]
            mid = next(m for m in marks if m[0] >= (t0 + t1) / 2)
            c.sendall(b"%d %.6f %d %.6f\n" % (total, t1 - t0, total - mid[1], t1 - mid[0]))
        elif mode == b"P":
            while True:
                m = c.recv(64)
                if not m: break
                while len(m) < 64:
                    x = c.recv(64 - len(m))
                    if not x: break
                    m += x
                c.sendall(m)
        c.close()
def connect(host, port):
    for i in range(100):
        try:
            s = socket.create_connection((host, port)); break
        except OSError:
            time.sleep(0.05)
    else:
        s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def tput(host, port, secs, sndbuf, want_bps):
    s = socket.socket()
    if sndbuf: s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, sndbuf)
    s.close(); s = connect(host, port)
    if sndbuf: s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, sndbuf)
    s.sendall(b"T")
    buf = memoryview(bytearray(1 << 20)); sent = 0
    t0 = time.monotonic(); end = t0 + secs
    while time.monotonic() < end:
        sent += s.send(buf)
    s.shutdown(socket.SHUT_WR)
    got, dt, got2, dt2 = s.makefile().readline().split()
    got, dt, got2, dt2 = int(got), float(dt), int(got2), float(dt2)
    assert got == sent, (got, sent)
    r, r2 = got * 8 / dt, got2 * 8 / dt2
    print("%.0f Mbit/s, second half %.0f Mbit/s (%d MB in %.2f s)" % (r / 1e6, r2 / 1e6, got // 1000000, dt), end="")
    if want_bps:
        ok = r2 >= want_bps
        print(" %s: >= %.0f Mbit/s" % ("ok" if ok else "LOW", want_bps / 1e6))
        sys.exit(0 if ok else 3)
    print()
def show(r, min_ms, what):
    r.sort()
    ms = lambda v: v * 1e3
    print("min %.3f ms, median %.3f ms, p99 %.3f ms (%d %s)" % (ms(r[0]), ms(r[len(r)//2]), ms(r[int(len(r)*0.99)]), len(r), what), end="")
    if min_ms:
        ok = ms(r[0]) >= min_ms
        print(" %s: >= %g ms" % ("ok" if ok else "TOO SHORT", min_ms))
        sys.exit(0 if ok else 3)
    print()
def rtt(host, port, secs, min_ms):
    s = connect(host, port); s.sendall(b"P")
    msg = b"x" * 64; r = []
    t_end = time.monotonic() + secs
    while len(r) < 10 or (time.monotonic() < t_end and len(r) < 20000):
        t = time.monotonic(); s.sendall(msg); got = 0
        while got < 64:
            x = s.recv(64 - got)
            if not x: raise SystemExit("connection closed")
            got += len(x)
        r.append(time.monotonic() - t)
    show(r, min_ms, "round trips")
def csum(b):
    if len(b) % 2: b += b"\0"
    v = sum(struct.unpack("!%dH" % (len(b) // 2), b)); v = (v >> 16) + (v & 0xffff); v += v >> 16
    return ~v & 0xffff
def icmp(host, count, min_ms, wait_s=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(wait_s)
    ident = os.getpid() & 0xffff; r = []
    for seq in range(count):
        body = struct.pack("!HH", ident, seq) + b"hybridmig-testnet" * 3
        pkt = struct.pack("!BBH", 8, 0, 0) + body
        pkt = pkt[:2] + struct.pack("!H", csum(pkt)) + pkt[4:]
        t = time.monotonic()
        try:
            s.sendto(pkt, (host, 0))
            while True:
                data = s.recv(2048)
                ihl = (data[0] & 15) * 4
                if data[ihl] == 0 and struct.unpack("!HH", data[ihl + 4:ihl + 8]) == (ident, seq): break
        except socket.timeout: # no answer in time
            continue
        except OSError: # no route: the link is down
            time.sleep(wait_s)
            continue
        r.append(time.monotonic() - t)
    if not r:
        print("no answer (%d pings)" % count)
        sys.exit(4)
    show(r, min_ms, "pings")
m, a = sys.argv[1], sys.argv[2:]
if m == "server": server(a[0], int(a[1]), int(a[2]) if len(a) > 2 else 0)
elif m == "tput": tput(a[0], int(a[1]), float(a[2]), int(a[3]) if len(a) > 3 else 0, float(a[4]) if len(a) > 4 else 0)
elif m == "icmp": icmp(a[0], int(a[1]), float(a[2]) if len(a) > 2 else 0, float(a[3]) if len(a) > 3 else 5)
else: rtt(a[0], int(a[1]), float(a[2]), float(a[3]) if len(a) > 3 else 0)