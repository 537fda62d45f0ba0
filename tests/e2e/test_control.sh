#!/bin/sh
# The control socket's defences, end to end with real VMs (src/control.h):
# a 0600 socket file, the SO_PEERCRED check, the idle timeout, the input and
# output caps, and a full connection table that cannot lock out stop.
# Socket clients are Python (standard library) in $T/ctl.py; every wait in
# them is bounded, and nothing here asserts how long anything takes.
. tests/e2e/lib.sh
require_kvm
MAXC=$(sed -n 's/^#define CONTROL_MAX_CONNS *\([0-9][0-9]*\).*/\1/p' src/control.h)
LINE_MAX=$(sed -n 's/^#define CONTROL_LINE_MAX *\([0-9][0-9]*\).*/\1/p' src/control.h)
if [ -z "$MAXC" ] || [ -z "$LINE_MAX" ]; then
	echo "FAIL: CONTROL_MAX_CONNS / CONTROL_LINE_MAX not found in src/control.h"
	exit 1
fi
# what the hybridmig process may grow by while a client streams 64 MiB at it
RSS_SLACK_KB=8192

cat >"$T/ctl.py" <<'PY'
import os, select, socket, sys, time

def conn(path, timeout=10):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    return s

def rss_kb(pid):
    with open("/proc/%s/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return -1

def read_until_closed(s, limit=30):
    """Everything the server sends until it closes (or `limit` s): (data, closed)."""
    data = b""
    end = time.time() + limit
    while time.time() < end:
        s.settimeout(max(0.1, end - time.time()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            return data, False
        except OSError:
            return data, True
        if not d:
            return data, True
        data += d
    return data, False

def read_line(s, buf, limit=30):
    """One line (without newline) or None on EOF/timeout; buf is a list holding leftovers."""
    end = time.time() + limit
    while b"\n" not in buf[0] and time.time() < end:
        s.settimeout(max(0.1, end - time.time()))
        try:
            d = s.recv(65536)
        except (socket.timeout, OSError):
            return None
        if not d:
            return None
        buf[0] += d
    if b"\n" not in buf[0]:
        return None
    line, buf[0] = buf[0].split(b"\n", 1)
    return line.decode(errors="replace")

def stream(s, size, limit=5):
    """Send up to `size` bytes with no newline until the peer stops taking them; bytes sent."""
    chunk = b"x" * 65536
    sent = 0
    s.settimeout(limit)
    try:
        while sent < size:
            sent += s.send(chunk[: min(len(chunk), size - sent)])
    except (socket.timeout, OSError):
        pass
    return sent

def noreply(path):
    # a peer the server refuses: no reply, just the end of the connection
    try:
        s = conn(path)
    except OSError as e:
        print("result=connect-failed %s" % e)
        return
    try:
        s.sendall(b'{"cmd":"status"}\n')
    except OSError:
        pass  # closed already: what follows reads the end
    data, closed = read_until_closed(s, 10)
    print("result=%s" % ("closed" if closed and not data else "answered %r" % data[:100]))

def idle(path, partial):
    s = conn(path)
    if partial:
        s.sendall(b'{"cmd":"sta')
    data, closed = read_until_closed(s, 60)
    print("closed=%s" % ("yes" if closed else "no"))
    print("said=%s" % data.decode(errors="replace").strip())

def hold(path, n, ready, stop):
    socks = []
    for i in range(n):
        s = conn(path)
        buf = [b""]
        s.sendall(b'{"cmd":"status"}\n')
        if '"ok":true' not in (read_line(s, buf) or ""):
            print("held=%d (connection %d got no status)" % (len(socks), i), flush=True)
            return
        socks.append(s)
    open(ready, "w").write("%d\n" % len(socks))
    end = time.time() + 120
    while not os.path.exists(stop) and time.time() < end:
        time.sleep(0.1)
    evicted = 0
    for s in socks:
        data, _ = read_until_closed(s, 5)
        evicted += b"evicted" in data
    print("held=%d evicted=%d" % (len(socks), evicted), flush=True)

def flood(path, pid, size):
    # no request in flight: the line is too long long before `size`
    s = conn(path)
    r0 = rss_kb(pid)
    sent = stream(s, size)
    data, closed = read_until_closed(s, 30)
    print("sent=%d" % sent)
    print("grew_kb=%d" % (rss_kb(pid) - r0))
    print("toolong=%s" % ("yes" if b"too long" in data else "no"))
    print("closed=%s" % ("yes" if closed else "no"))

def inflight(path, pid, port, size):
    # migrate to a destination that never answers stays in flight until mig gives up
    s = conn(path)
    buf = [b""]
    s.sendall(b'{"cmd":"migrate","to":"127.0.0.1:%d","insecure":true}\n' % port)
    first = read_line(s, buf) or ""
    print("first=%s" % first[:200])
    if '"progress"' not in first:
        print("inflight=no")
        return
    print("inflight=yes")
    r0 = rss_kb(pid)
    sent = stream(s, size)
    print("sent=%d" % sent)
    print("grew_kb=%d" % (rss_kb(pid) - r0))
    final = None
    end = time.time() + 120
    while time.time() < end:
        line = read_line(s, buf, 120)
        if line is None or '"ok"' in line:
            final = line
            break
    print("final=%s" % (final or "")[:200])
    data, closed = read_until_closed(s, 30)
    print("toolong=%s" % ("yes" if b"too long" in buf[0] + data else "no"))
    print("closed=%s" % ("yes" if closed else "no"))

def noread(path, n):
    # pipelined requests whose replies are never read
    s = conn(path)
    req = b'{"cmd":"status"}\n' * n
    sent = 0
    s.settimeout(5)
    try:
        while sent < len(req):
            sent += s.send(req[sent : sent + 65536])
    except (socket.timeout, OSError):
        pass
    time.sleep(1)
    data, closed = read_until_closed(s, 30)
    print("sent_requests=%d" % (sent // 17))
    print("replies=%d" % data.count(b"\n"))
    print("closed=%s" % ("yes" if closed else "no"))

def bad(path, line_max):
    s = conn(path)
    buf = [b""]
    for req in [b'{"cmd":"sta\x00tus"}', b'\x00\x00\x00', b'{"cmd":"status","x":1e999999}',
                b'{"cmd":"status","x":-99999999999999999999999999999999999999999}',
                b'{"cmd":"migrate","to":"127.0.0.1:1","bandwidth":1e300}',
                b'{"cmd":"' + b"s" * 300 + b'"}', b'{"cmd":"status"}']:
        s.sendall(req + b"\n")
        print(read_line(s, buf))
    s.sendall(b"{" + b" " * line_max + b"}\n")
    data, closed = read_until_closed(s, 30)
    print("toolong=%s closed=%s" % (b"too long" in buf[0] + data, closed))

def fakedest(portfile, stop):
    # accepts migration connections and never answers them
    l = socket.create_server(("127.0.0.1", 0))
    open(portfile + ".tmp", "w").write("%d\n" % l.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    held = []
    end = time.time() + 300
    while not os.path.exists(stop) and time.time() < end:
        if select.select([l], [], [], 0.2)[0]:
            held.append(l.accept()[0])

mode, args = sys.argv[1], sys.argv[2:]
if mode == "noreply": noreply(args[0])
elif mode == "idle": idle(args[0], args[1] == "partial")
elif mode == "hold": hold(args[0], int(args[1]), args[2], args[3])
elif mode == "flood": flood(args[0], args[1], int(args[2]))
elif mode == "inflight": inflight(args[0], args[1], int(args[2]), int(args[3]))
elif mode == "noread": noread(args[0], int(args[1]))
elif mode == "bad": bad(args[0], int(args[1]))
elif mode == "fakedest": fakedest(args[0], args[1])
PY
ctl() { python3 "$T/ctl.py" "$@"; }
# nth N PATTERN FILE: line N of FILE matches PATTERN
nth() { sed -n "$1p" "$3" | grep -q -- "$2"; }
# wait_exit PID: wait for a VM to exit (killed after 30 s); returns its exit code
wait_exit() {
	i=0
	while [ -e "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ] &&
		[ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null
	wait "$1"
}
# wait_file PATH: until PATH exists (at most 30 s)
wait_file() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -s "$1" ]
}

# --- A: default limits ----------------------------------------------------
S=$T/x.sock
start_bg vm run --mem 64M --guest idle --control "$S"
check "control socket comes up" wait_sock "$S"
check "socket file is 0600 (got $(stat -c %a "$S"))" [ "$(stat -c %a "$S")" = 600 ]

# SO_PEERCRED: open the file and its directory to everyone for a moment, so
# that only the peer check stands between uid 65534 and the VM
chmod 0711 "$T"
chmod 0666 "$S"
setpriv --reuid=65534 --regid=65534 --clear-groups env -i /usr/bin/python3 - noreply "$S" \
	<"$T/ctl.py" >"$T/nobody.out" 2>&1
chmod 0600 "$S"
chmod 0700 "$T"
check "another uid is closed without a reply ($(cat "$T/nobody.out"))" grep -qx "result=closed" "$T/nobody.out"
check "... and the refusal names uid and pid" grep -q "from uid 65534 (pid [0-9]*)" "$T/vm.err"
check "our own uid is still served" wait_sock "$S"

ctl bad "$S" "$LINE_MAX" >"$T/bad.out" 2>&1
check "NUL in a string -> error reply" nth 1 '"ok":false' "$T/bad.out"
check "NUL bytes alone -> error reply" nth 2 '"ok":false' "$T/bad.out"
check "huge exponent -> error reply" nth 3 'bad number' "$T/bad.out"
check "huge integer -> no crash" nth 4 '"ok"' "$T/bad.out"
check "huge bandwidth -> refused" nth 5 'bandwidth must be' "$T/bad.out"
check "over-long string -> error reply" nth 6 '"ok":false' "$T/bad.out"
check "connection still serves after all that" nth 7 '"ok":true' "$T/bad.out"
check "line over CONTROL_LINE_MAX -> error reply and close" grep -q "toolong=True closed=True" "$T/bad.out"

PID=$PID_vm
ctl flood "$S" "$PID" $((64 << 20)) >"$T/flood.out" 2>&1
check "64 MiB without newline: error reply ($(tr '\n' ' ' <"$T/flood.out"))" grep -q "toolong=yes" "$T/flood.out"
check "... and the connection is closed" grep -q "closed=yes" "$T/flood.out"
check "... and the process did not grow by more than $RSS_SLACK_KB KiB" \
	[ "$(sed -n 's/^grew_kb=//p' "$T/flood.out")" -le $RSS_SLACK_KB ]

ctl noread "$S" 200000 >"$T/noread.out" 2>&1
check "a client that does not read its replies is dropped ($(tr '\n' ' ' <"$T/noread.out"))" \
	grep -q "closed=yes" "$T/noread.out"
check "... before it got every reply" [ "$(sed -n 's/^replies=//p' "$T/noread.out")" -lt 200000 ]
check "... with a warning" grep -q "does not read its replies" "$T/vm.err"
check "the VM still serves" wait_sock "$S"

# a full table: CONTROL_MAX_CONNS idle clients must not lock out stop
ctl hold "$S" "$MAXC" "$T/hold.ready" "$T/hold.stop" >"$T/hold.out" 2>&1 &
PIDS="$PIDS $!"
HOLD=$!
check "$MAXC idle clients connected" wait_file "$T/hold.ready"
"$HM" stop --control "$S" >"$T/stop.out" 2>&1
rc=$?
check "stop works with $MAXC idle clients connected ($(tr -s '\n ' '  ' <"$T/stop.out"))" [ $rc -eq 0 ]
wait_exit "$PID_vm"
check "run exits 0 after stop" [ $? -eq 0 ]
touch "$T/hold.stop"
wait $HOLD
check "the client idle longest was evicted, with a reason ($(cat "$T/hold.out"))" \
	grep -q "held=$MAXC evicted=1$" "$T/hold.out"
check "control socket removed" [ ! -e "$S" ]

# --- B: a short idle timeout (test-only HM_CONTROL_IDLE_MS) ----------------
S=$T/y.sock
export HM_CONTROL_IDLE_MS=1000
start_bg vmb run --mem 64M --guest idle --control "$S"
unset HM_CONTROL_IDLE_MS
check "control socket comes up" wait_sock "$S"
ctl idle "$S" none >"$T/idle.out" 2>&1
check "an idle client is closed ($(tr '\n' ' ' <"$T/idle.out"))" grep -q "closed=yes" "$T/idle.out"
check "... and told why" grep -q "said=.*idle" "$T/idle.out"
ctl idle "$S" partial >"$T/idle2.out" 2>&1
check "half a request does not keep a client alive" grep -q "closed=yes" "$T/idle2.out"

# a request in flight (a migration to a destination that never answers) is
# not idle, and the 64 MiB it queues meanwhile are not read into memory
ctl fakedest "$T/dest.port" "$T/dest.stop" &
PIDS="$PIDS $!"
DEST=$!
check "fake destination listens" wait_file "$T/dest.port"
ctl inflight "$S" "$PID_vmb" "$(cat "$T/dest.port")" $((64 << 20)) >"$T/inflight.out" 2>&1
touch "$T/dest.stop"
wait $DEST
check "migrate stays in flight ($(head -1 "$T/inflight.out"))" grep -q "inflight=yes" "$T/inflight.out"
check "64 MiB queued behind it are not all taken ($(grep sent= "$T/inflight.out"))" \
	[ "$(sed -n 's/^sent=//p' "$T/inflight.out")" -lt $((8 << 20)) ]
check "... and the process did not grow by more than $RSS_SLACK_KB KiB ($(grep grew "$T/inflight.out"))" \
	[ "$(sed -n 's/^grew_kb=//p' "$T/inflight.out")" -le $RSS_SLACK_KB ]
check "the migrate client outlived the idle timeout and got its final reply" \
	grep -q 'final=.*"ok"' "$T/inflight.out"
check "... then the queued line was refused as too long and the connection closed" \
	grep -q "toolong=yes" "$T/inflight.out"
check "... closed" grep -q "closed=yes" "$T/inflight.out"
check "the VM still runs here" sh -c "'$HM' status --control '$S' --json | grep -q '\"state\":\"running\"'"

check "stop" sh -c "'$HM' stop --control '$S' >/dev/null"
wait_exit "$PID_vmb"
check "run exits 0 after stop" [ $? -eq 0 ]
check "nothing left running" none_running
finish
