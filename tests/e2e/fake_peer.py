#!/usr/bin/env python3
"""Hostile peers for tests/e2e/test_trust.sh: a fake destination or source
that speaks hybridmig's wire protocol (src/proto.h) as far as it must, then
misbehaves. Standard library only; every wait is bounded.

  fake_peer.py dest PORT PKI_DIR MODE   listen once, answer a real source
      MODE refuse:CODE   REFUSE with error code CODE (e.g. 4294967295)
           error:CODE    ACCEPT, then ERROR with CODE after the first frames
           badhello      answer the hello with a wrong magic
  fake_peer.py src PORT PKI_DIR MODE    connect to a real destination
      MODE nocert        TLS without a client certificate
           othercert     TLS with a certificate from another CA (PKI_DIR/../other)
           plain         plain TCP hello to a TLS destination
           garbage       TLS-less random bytes
           slowloris     one byte per 200 ms, for at most 30 s
Prints one line saying what happened; exit 0 when the script ran to the end.
"""
import os
import socket
import ssl
import struct
import sys
import time

MAGIC = 0x4749484D4D48
VERSION = 2
HELLO, VMDESC, ACCEPT, REFUSE, ERROR = 1, 2, 3, 4, 11


def frame(ftype, payload=b"", flags=0):
    return struct.pack("<IIQ", ftype, flags, len(payload)) + payload


def hello(channel, secret, magic=MAGIC):
    return frame(HELLO, struct.pack("<QIIII", magic, VERSION, channel, 0, 0) + secret)


def error(code, msg=b"hostile"):
    return struct.pack("<II", code & 0xFFFFFFFF, 0) + msg.ljust(240, b"\0")[:240]


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed")
        buf += chunk
    return buf


def recv_frame(s):
    ftype, flags, length = struct.unpack("<IIQ", recv_exact(s, 16))
    return ftype, recv_exact(s, length) if length else b""


def server_ctx(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(os.path.join(pki, "dst", "cert.pem"), os.path.join(pki, "dst", "key.pem"))
    ctx.load_verify_locations(os.path.join(pki, "dst", "ca.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def fake_dest(port, pki, mode):
    ctx = server_ctx(pki)
    lis = socket.create_server(("127.0.0.1", port))
    lis.settimeout(30)
    conns = []
    for _ in range(2):  # bulk, then urgent
        raw, _ = lis.accept()
        raw.settimeout(30)
        s = ctx.wrap_socket(raw, server_side=True)
        ftype, payload = recv_frame(s)
        assert ftype == HELLO, ftype
        secret = payload[24:40]
        channel = struct.unpack("<I", payload[12:16])[0]
        if mode == "badhello":
            s.sendall(hello(channel, secret, magic=0x1234))
            print("sent a bad hello")
            time.sleep(1)
            return
        s.sendall(hello(channel, secret))
        conns.append(s)
    bulk = conns[0]
    ftype, _ = recv_frame(bulk)
    assert ftype == VMDESC, ftype
    kind, code = mode.split(":")
    code = int(code)
    if kind == "refuse":
        bulk.sendall(frame(REFUSE, error(code)))
    else:
        bulk.sendall(frame(ACCEPT))
        for _ in range(3):
            recv_frame(bulk)
        bulk.sendall(frame(ERROR, error(code)))
    print("sent %s code %d" % (kind, code))
    try:  # let the source read it before the connection goes
        bulk.settimeout(5)
        while recv_frame(bulk):
            pass
    except Exception:
        pass


def client(port, pki, cert_dir):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert_dir:
        ctx.load_cert_chain(os.path.join(cert_dir, "cert.pem"), os.path.join(cert_dir, "key.pem"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=15)
    return ctx.wrap_socket(raw)


def fake_src(port, pki, mode):
    try:
        if mode in ("nocert", "othercert"):
            other = os.path.join(os.path.dirname(pki.rstrip("/")), "other", "src")
            s = client(port, pki, other if mode == "othercert" else None)
            s.sendall(hello(0, os.urandom(16)))
            s.settimeout(10)
            data = s.recv(4096)
            print("got %d bytes back" % len(data))
        elif mode == "plain":
            s = socket.create_connection(("127.0.0.1", port), timeout=15)
            s.sendall(hello(0, os.urandom(16)))
            data = s.recv(4096)
            print("got %d bytes back" % len(data))
        elif mode == "garbage":
            s = socket.create_connection(("127.0.0.1", port), timeout=15)
            s.sendall(os.urandom(4096))
            data = s.recv(4096)
            print("got %d bytes back" % len(data))
        elif mode == "slowloris":
            s = socket.create_connection(("127.0.0.1", port), timeout=15)
            end = time.time() + 30
            msg = b"\x16\x03\x01" + os.urandom(200)
            for b in msg:
                if time.time() > end:
                    break
                s.sendall(bytes([b]))
                time.sleep(0.2)
            print("slowloris ran out of bytes")
    except Exception as e:  # a refusal shows up as an error here
        print("refused: %s" % type(e).__name__)


def main():
    role, port, pki, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    (fake_dest if role == "dest" else fake_src)(port, pki, mode)


if __name__ == "__main__":
    main()
