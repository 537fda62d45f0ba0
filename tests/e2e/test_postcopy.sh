#!/bin/sh
# Post-copy and hybrid migration end to end in the two-namespace network:
# idle, a dirtier smaller than RAM, a 2-vCPU dirtier with the I/O device,
# 1 and 2 vCPUs; and a writer faster than the link, where pre-copy gives
# up at --timeout (the VM fine on the source) while hybrid completes.
# Every run ends with the guest's verify ok on the destination.
. tests/e2e/lib.sh
require_kvm
require_uffd
net_up hpc$$ --rate 10gbit
PORT=$((10000 + $$ % 20000)) # below the ephemeral range (32768+)

for mode in postcopy hybrid; do
	move $mode ${mode}_idle -- --mem 256M --guest idle
	check "${mode}_idle: migrate exits 0" [ $? -eq 0 ]
	landed ${mode}_idle
	move $mode ${mode}_ws --postcopy-after-rounds 1 -- --mem 512M --guest dirtier:wss=64M,rate=30000,pattern=zipf
	check "${mode}_ws: migrate exits 0" [ $? -eq 0 ]
	check "${mode}_ws: switched to post-copy" [ "$(json_get postcopy <"$T/${mode}_ws.final")" = true ]
	check "${mode}_ws: pages pushed" [ "$(json_get pages_pushed <"$T/${mode}_ws.final")" -gt 0 ]
	landed ${mode}_ws grows
	move $mode ${mode}_io2 --postcopy-after-rounds 1 -- --mem 256M --vcpus 2 --guest dirtier:wss=32M,rate=20000,pattern=random,io=20
	check "${mode}_io2: migrate exits 0" [ $? -eq 0 ]
	landed ${mode}_io2 grows
done
f=$T/postcopy_ws.final
check "post-copy report: fault latency p99 present" [ "$(json_get fault_latency_p99_us <"$f")" != null ]
check "post-copy report: remote faults counted" [ "$(json_get remote_faults <"$f")" != null ]

# --- the timeline in a recording (migrate --record): post-copy paced to ~3 s ---------
move postcopy tl --bandwidth 20M --record "$T/tl.rec" -- --mem 256M --guest dirtier:wss=64M,rate=20000,pattern=zipf
check "timeline: migrate exits 0" [ $? -eq 0 ]
landed tl
# prints what is wrong with the ticks of a recording, nothing when they are right
timeline_faults() {
	python3 - "$1" <<'PY'
import json, sys
ticks = [t for t in map(json.loads, open(sys.argv[1])) if t.get("type") == "tick"]
if len(ticks) < 10:
    sys.exit(print("only %d ticks" % len(ticks)))
for a, b in zip(ticks, ticks[1:]):
    for k in ("t_s", "bytes_wire", "pages_sent", "pages_pushed", "pages_requested"):
        if b[k] < a[k]:
            print("%s goes back: %s -> %s" % (k, a[k], b[k]))
phases = [t["phase"] for t in ticks]
for p in ("connecting", "switch-over", "postcopy"):
    if p not in phases:
        print("no %s tick" % p)
if phases[-1] != "done":
    print("last tick in phase %s" % phases[-1])
pc = [t for t in ticks if t["phase"] == "postcopy"]
if any(t["pusher_gfn"] is None or t["pages_owed"] is None or t["remote_faults"] is None for t in pc):
    print("a post-copy tick without pusher_gfn, pages_owed or remote_faults")
if pc and not pc[-1]["pages_owed"] < pc[0]["pages_owed"]:
    print("pages owed did not fall: %s -> %s" % (pc[0]["pages_owed"], pc[-1]["pages_owed"]))
if any(t["pusher_gfn"] is not None for t in ticks if t["phase"] in ("connecting", "checks")):
    print("a pusher position before the switch")
src = [t["guest_units"] for t in ticks if t["guest_on"] == "source"]
dst = [t["guest_units"] for t in ticks if t["guest_on"] == "destination" and t["guest_units"] is not None]
if None in src:
    print("guest units unknown on the source")
if len(dst) < 2 or dst != sorted(dst) or dst[-1] <= dst[0]:
    print("the destination's guest units do not grow: %s" % dst[:8])
PY
}
check "timeline: the recording's ticks are consistent" [ -z "$(timeline_faults "$T/tl.rec" | tee -a "$T/tl.faults")" ]
cat "$T/tl.faults" 2>/dev/null

# --- a writer faster than the link -------------------------------------------------
move precopy fast_pre --bandwidth 40M --timeout 3 -- --mem 256M --guest dirtier:wss=64M
check "fast writer: pre-copy gives up (exit 5)" [ $? -eq 5 ]
check "fast writer: says it did not converge" grep -q "did not converge" "$T/fast_pre.final"
check "fast writer: VM still running on the source" [ "$("$HM" status --control "$T/fast_pre.s.sock" --json | json_get state)" = running ]
check "fast writer: verify ok on the source" [ "$("$HM" verify --control "$T/fast_pre.s.sock" --json | json_get verify)" = ok ]
"$HM" stop --control "$T/fast_pre.s.sock" >/dev/null
kill "$PID_fast_pre_d" 2>/dev/null
wait "$PID_fast_pre_s" "$PID_fast_pre_d"
move hybrid fast_hyb --bandwidth 40M --timeout 3 -- --mem 256M --guest dirtier:wss=64M
check "fast writer: hybrid completes (exit 0)" [ $? -eq 0 ]
check "fast writer: hybrid switched to post-copy" [ "$(json_get postcopy <"$T/fast_hyb.final")" = true ]
landed fast_hyb grows
# --- the link breaks during post-copy: the source keeps its pages, never resumes ----
PORT=$((PORT + 1))
bg_in b cut_d incoming $TLS_DST --listen "$B:$PORT"
bg_in a cut_s run --mem 512M --guest dirtier:wss=256M,rate=50000 --control "$T/cut.s.sock"
wait_sock "$T/cut.s.sock"
sleep 2
ip netns exec "$NET-a" "$HM" migrate $TLS_SRC --mode postcopy --bandwidth 20M --control "$T/cut.s.sock" \
	--to "$B:$PORT" --reconnect-timeout 3 --json >"$T/cut.mig" 2>"$T/cut.err" &
mp=$!
sleep 2
bash tools/testnet.sh linkdown "$NET"
wait $mp
check "post-copy link cut: migrate exits 7 (link lost)" [ $? -eq 7 ]
tail -1 "$T/cut.mig" >"$T/cut.final"
check "post-copy link cut: it had switched" [ "$(json_get postcopy <"$T/cut.final")" = true ]
check "post-copy link cut: source VM stays fenced (paused for good)" [ "$("$HM" status --control "$T/cut.s.sock" --json | json_get state)" = fenced ]
check "post-copy link cut: source is fenced" [ "$("$HM" status --control "$T/cut.s.sock" --json | json_get fenced)" = true ]
"$HM" resume --control "$T/cut.s.sock" >/dev/null 2>"$T/cut.resume"
check "post-copy link cut: resume refused" [ $? -eq 1 ]
check "post-copy link cut: says why" grep -q "may run on the migration destination" "$T/cut.resume"
check "post-copy link cut: the source said it was reconnecting" grep -q "reconnecting" "$T/cut_s.err"
bash tools/testnet.sh linkup "$NET"
"$HM" stop --control "$T/cut.s.sock" >/dev/null 2>&1
check "post-copy link cut: stop refused while fenced" [ $? -eq 1 ]
"$HM" stop --force --control "$T/cut.s.sock" >/dev/null
wait "$PID_cut_s"
kill "$PID_cut_d" 2>/dev/null
wait "$PID_cut_d"
check "post-copy link cut: destination ends on SIGTERM without a crash" [ $? -lt 128 ]
# --- the connections break during post-copy and come back: the migration completes --
PORT=$((PORT + 1))
bg_in b back_d incoming $TLS_DST --listen "$B:$PORT" --control "$T/back.d.sock"
bg_in a back_s run --mem 512M --guest dirtier:wss=128M,rate=20000 --control "$T/back.s.sock"
wait_sock "$T/back.s.sock"
sleep 1.5
ip netns exec "$NET-a" "$HM" migrate $TLS_SRC --mode postcopy --bandwidth 20M --control "$T/back.s.sock" \
	--to "$B:$PORT" --reconnect-timeout 60 --json >"$T/back.mig" 2>"$T/back.err" &
mp=$!
i=0
while [ $i -lt 100 ] && ! grep -q '"phase":"postcopy"' "$T/back.mig"; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
# break both connections (RST), as a flapping link or a middlebox would
ip netns exec "$NET-a" ss -K dport = ":$PORT" >/dev/null 2>&1
wait $mp
check "post-copy link back: migrate exits 0" [ $? -eq 0 ]
tail -1 "$T/back.mig" >"$T/back.final"
check "post-copy link back: it reconnected" [ "$(json_get reconnects <"$T/back.final")" -ge 1 ]
landed back grows
check "no hybridmig left running" none_running
finish
