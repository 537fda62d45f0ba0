#!/bin/sh
# The dirtier's multiboot image (tools/mbimage, guest/mb_stub.S) under QEMU
# with software emulation (TCG: no KVM needed): it boots, its progress counter
# grows in the RAM mailbox at the guest's rate, and once the VM is stopped
# every page of the working set carries the dirtier's page format (guest/page.h)
# with the generation of the guest's own table. An image whose stub loads a
# wrong CR3 must do none of that (the checks can fail). Skips without
# qemu-system-x86_64 (HM_REQUIRE=qemu makes that a failure). Each QEMU is
# bounded by a timeout and killed on exit.
. tests/e2e/lib.sh
MB=$O/tools/mbimage
QEMU=${QEMU:-qemu-system-x86_64}
QMP="python3 tools/qmp.py"
RATE=2000

if ! command -v $QEMU >/dev/null 2>&1; then
	case ",${HM_REQUIRE:-}," in
	*,qemu,*) echo "FAIL: $QEMU is required (HM_REQUIRE) but missing"; exit 1 ;;
	esac
	echo "skip: $QEMU is missing (sh tools/deps.sh qemu-system-x86)"
	exit 77
fi
if [ ! -x "$MB" ]; then
	echo "FAIL: $MB is missing (make tests builds it)"
	exit 1
fi

# the QEMUs: their pids from -pidfile, killed before lib.sh's clean-up
stop_qemus() {
	for f in "$T"/*.qpid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	cleanup
}
trap stop_qemus EXIT INT TERM

# boot NAME IMAGE: QEMU (TCG, 64 MiB, no devices) in the background, at most 60 s,
# QMP on $T/NAME.qmp
boot() {
	timeout -k 2 60 $QEMU -M pc -accel tcg -m 64M -smp 1 -nodefaults -display none \
		-no-reboot -kernel "$2" -qmp "unix:$T/$1.qmp,server=on,wait=off" \
		-pidfile "$T/$1.qpid" >"$T/$1.log" 2>&1 &
	PIDS="$PIDS $!"
	eval "PID_$1=$!"
}

# info KEY: a member of the image's JSON description
info() {
	json_get "$1" <"$T/img.json"
}

# --- the image -----------------------------------------------------------------
"$MB" --guest "dirtier:wss=4M,rate=$RATE,pattern=random,prefill=1" --mem 64M -o "$T/d.mb" \
	>"$T/img.json" 2>"$T/img.err"
rc=$?
check "mbimage writes the image $(cat "$T/img.err")" [ $rc -eq 0 -a -s "$T/d.mb" ]
check "the stub is small ($(info stub_bytes) bytes)" [ "$(info stub_bytes)" -le 512 ]
PROGRESS=$(info progress_gpa)
"$MB" --guest dirtier:io=5 --mem 64M -o "$T/x.mb" >/dev/null 2>"$T/io.err"
rc=$?
check "mbimage refuses io= (QEMU has no such device)" [ $rc -ne 0 -a ! -s "$T/x.mb" ]

# --- it boots and dirties at its rate ---------------------------------------------
boot good "$T/d.mb"
u0=$($QMP "$T/good.qmp" --wait 10 xp "$PROGRESS")
check "QMP answers and xp reads the mailbox ($u0)" [ -n "$u0" ]
# prefill (1024 pages) first, then $RATE pages/s: wait until past it, then time 2 s
i=0
while [ $i -lt 100 ] && [ "$($QMP "$T/good.qmp" xp "$PROGRESS")" -lt 1100 ]; do
	sleep 0.1
	i=$((i + 1))
done
t1=$(date +%s.%N)
u1=$($QMP "$T/good.qmp" xp "$PROGRESS")
sleep 2
t2=$(date +%s.%N)
u2=$($QMP "$T/good.qmp" xp "$PROGRESS")
check "progress grows in the mailbox ($u0 -> $u1 -> $u2)" [ "${u2:-0}" -gt "${u1:-0}" ]
r=$(awk -v a="$u1" -v b="$u2" -v s="$t1" -v e="$t2" 'BEGIN { printf "%.0f", (b - a) / (e - s) }')
check "the guest writes at its rate: $r pages/s for $RATE (TSC kHz $(info tsc_khz))" \
	[ "$r" -ge $((RATE / 2)) -a "$r" -le $((RATE * 3 / 2)) ]
st=$($QMP "$T/good.qmp" query-status)
check "still running ($st)" sh -c "echo '$st' | grep -q '\"running\": true'"
$QMP "$T/good.qmp" human-monitor-command '{"command-line":"info registers"}' >"$T/regs" 2>&1
check "the guest runs at CPL 3 in 64-bit code" sh -c "grep -q 'CPL=3' '$T/regs' && grep -q 'CS64' '$T/regs'"

# --- the pages carry the dirtier's format -------------------------------------------
$QMP "$T/good.qmp" stop >/dev/null
WS=$(info ws_gpa)
GEN=$(info gen_gpa)
NP=$(info ws_pages)
$QMP "$T/good.qmp" pmemsave "{\"val\": $GEN, \"size\": $((WS - GEN + NP * 4096)), \"filename\": \"$T/mem\"}" >/dev/null
$QMP "$T/good.qmp" pmemsave "{\"val\": 0, \"size\": 4096, \"filename\": \"$T/boot\"}" >/dev/null
units=$($QMP "$T/good.qmp" xp "$PROGRESS")
python3 - "$T/mem" "$T/boot" "$GEN" "$WS" "$NP" "$units" >"$T/pages.out" 2>&1 <<'PY'
import struct, sys
sys.path.insert(0, "tools")
from guestpage import BOOT_MAGIC, PAGE, generations, in_flight, page_ok
mem, boot = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
gen_gpa, ws_gpa, n, units = (int(a) for a in sys.argv[3:7])
magic = struct.unpack_from("<Q", boot, 0)[0]
assert magic == BOOT_MAGIC, "boot info magic %#x" % magic
gens = generations(mem, n)
off = ws_gpa - gen_gpa
page = lambda i: mem[off + i * PAGE:off + (i + 1) * PAGE]
bad = [i for i in range(n) if gens[i] < 1 or not page_ok(page(i), (ws_gpa >> 12) + i, gens[i])]
# the VM stopped anywhere: one page may be mid-write (tools/guestpage.py)
if len(bad) == 1 and gens[bad[0]] >= 1 and in_flight(page(bad[0]), gens[bad[0]]):
    bad = []
assert not bad, "%d of %d pages bad, first index %d" % (len(bad), n, bad[0])
# the table counts every write; the mailbox's counter lags it by at most a report
assert sum(gens) >= units > 0, "generations %d, progress %d" % (sum(gens), units)
print("%d pages ok, %d writes, progress %d" % (n, sum(gens), units))
PY
check "every working-set page is in the dirtier's format: $(tail -n 1 "$T/pages.out")" \
	grep -q "pages ok" "$T/pages.out"
$QMP "$T/good.qmp" quit >/dev/null 2>&1
wait_exit "$PID_good" 10
check "QEMU quits" [ $? -eq 0 ]

# --- a broken stub: the same checks fail -------------------------------------------
# CR3 (descriptor field at image offset 32 + 24) pointing at the GDT page: the
# first fetch after paging is on faults, QEMU stops the VM (-no-reboot)
cp "$T/d.mb" "$T/bad.mb"
printf '\000\020\000\000' | dd of="$T/bad.mb" bs=1 seek=56 conv=notrunc 2>/dev/null
boot bad "$T/bad.mb"
wait_exit "$PID_bad" 30
rc=$?
# 0: QEMU's own shutdown at the reset the triple fault asks for (not a start-up error)
check "a stub with a wrong CR3 does not run the guest (QEMU stops at the triple fault: $rc)" \
	[ $rc -eq 0 ]
finish
