#!/bin/sh
# hybridmig run and the control socket, end to end with real KVM guests.
. tests/e2e/lib.sh
require_kvm
S=$T/vm.sock

# --- a dirtier served on a control socket --------------------------------
start_bg vm run --mem 256M --vcpus 2 --guest dirtier:wss=16M,io=20 --control "$S"
check "control socket comes up" wait_sock "$S"
u1=$("$HM" status --control "$S" --json | json_get work_units)
sleep 0.5
u2=$("$HM" status --control "$S" --json | json_get work_units)
check "guest progress grows ($u1 -> $u2)" [ "$u2" -gt "$u1" ]
check "human status names the guest" sh -c "'$HM' status --control '$S' | grep -q 'guest .*dirtier'"
v=$("$HM" verify --control "$S" --json)
check "verify ok" [ "$(echo "$v" | json_get verify)" = ok ]
check "verify checked the working set and ring" [ "$(echo "$v" | json_get verify_pages_checked)" -ge 4096 ]
check "pause" sh -c "'$HM' pause --control '$S' --json | grep -q '\"state\":\"paused\"'"
p1=$("$HM" status --control "$S" --json | json_get work_units)
sleep 0.3
p2=$("$HM" status --control "$S" --json | json_get work_units)
check "no progress while paused" [ "$p1" = "$p2" ]
"$HM" verify --control "$S" >/dev/null 2>"$T/verify.err"
check "verify refused while paused (exit 1)" [ $? -eq 1 ]
check "... with a reason" grep -q "paused" "$T/verify.err"
check "resume" sh -c "'$HM' resume --control '$S' --json | grep -q '\"state\":\"running\"'"

# --- malformed control requests -------------------------------------------
python3 - "$S" >"$T/proto.out" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
for line in [b"not json", b'{"cmd":"frobnicate"}', b'{"nocmd":1}', b'{"cmd":"status"} trailing',
             b'{"cmd":{"a":1}}', b'{"cmd":"status"}']:
    f.write(line + b"\n"); f.flush()
    print(f.readline().decode().strip())
PY
check "not JSON -> error reply" sed -n 1p "$T/proto.out" | grep -q '"ok":false,"error":"request is not valid JSON'
check "unknown command -> error reply" sed -n 2p "$T/proto.out" | grep -q "unknown command 'frobnicate'"
check "no cmd -> error reply" sed -n 3p "$T/proto.out" | grep -q 'no \\"cmd\\"'
check "trailing data -> error reply" sed -n 4p "$T/proto.out" | grep -q 'trailing data'
check "nested value -> error reply" sed -n 5p "$T/proto.out" | grep -q 'nested'
check "connection still serves after errors" sed -n 6p "$T/proto.out" | grep -q '"ok":true'

check "stop" sh -c "'$HM' stop --control '$S' >/dev/null"
wait "$PID_vm"
check "run exits 0 after stop" [ $? -eq 0 ]
check "control socket removed" [ ! -e "$S" ]
check "client on a dead socket fails cleanly" sh -c "! '$HM' status --control '$S' 2>&1 | grep -q 'cannot reach'; '$HM' status --control '$S' 2>&1 | grep -q 'cannot reach'"

# --- run --seconds: summary and JSON --------------------------------------
"$HM" run --mem 128M --guest dirtier:wss=8M,pattern=random --seconds 1 --json >"$T/sum.json"
check "run --seconds --json exits 0" [ $? -eq 0 ]
check "summary: verify ok" [ "$(json_get verify <"$T/sum.json")" = ok ]
check "summary: pages touched" [ "$(json_get pages_touched <"$T/sum.json")" -ge 2048 ]
check "summary: work units/s" [ "$(json_get work_units_per_s_avg <"$T/sum.json")" -gt 0 ]
"$HM" run --mem 128M --guest idle --seconds 1 >"$T/sum.txt"
check "human summary" grep -q "verify          ok" "$T/sum.txt"

# --- bad input: one clear line, non-zero exit, nothing left behind ----------
expect_fail() { # CODE PATTERN ARGS...
	code=$1 pat=$2
	shift 2
	"$HM" "$@" >"$T/bad.out" 2>"$T/bad.err"
	rc=$?
	if [ $rc -eq "$code" ] && grep -q -- "$pat" "$T/bad.err"; then ok "$* -> exit $code"
	else bad "$* -> exit $rc (want $code), stderr: $(head -c 300 "$T/bad.err")"; fi
}
expect_fail 2 "bad --mem 'lots'" run --mem lots
expect_fail 2 "bad --mem '1.5G'" run --mem 1.5G
expect_fail 2 "bad --mem '1000G'" run --mem 1000G
expect_fail 2 "bad --vcpus '9'" run --vcpus 9
expect_fail 2 "bad --vcpus '0'" run --vcpus 0
expect_fail 2 "unknown guest 'nope'" run --guest nope
expect_fail 2 "has no parameter 'foo'" run --guest dirtier:foo=1
expect_fail 2 "bad value 'sideways'" run --guest dirtier:pattern=sideways
expect_fail 2 "larger than --mem" run --mem 64M --guest dirtier:wss=1G
expect_fail 2 "unknown command 'frob'" frob
expect_fail 2 "unexpected argument" run extra
expect_fail 2 "control PATH is required" status
HYBRIDMIG_KVM_DEVICE=/nonexistent/kvm expect_fail 1 "does not exist: KVM is not available" run --seconds 1
HYBRIDMIG_KVM_DEVICE=/dev/null expect_fail 1 "not a usable KVM device" run --seconds 1
expect_fail 1 "triple-faulted" run --guest fault:kind=ud --control "$T/f.sock"
check "no socket left after a guest fault" [ ! -e "$T/f.sock" ]
expect_fail 1 "no memory or device backs" run --guest fault:kind=mmio --vcpus 2
expect_fail 1 "internal error" run --guest fault:kind=panic --json
check "fault summary JSON says ok false" grep -q '"ok":false' "$T/bad.out"
touch "$T/notasock"
expect_fail 1 "is not a socket" run --control "$T/notasock"
check "help for run lists --mem" sh -c "'$HM' run --help | grep -q -- '--mem SIZE'"
check "help for status lists --control" sh -c "'$HM' status --help | grep -q -- '--control PATH'"
check "no hybridmig left running" none_running
finish
