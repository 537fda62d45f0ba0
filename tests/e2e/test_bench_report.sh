#!/bin/sh
# make bench's report, without KVM: `tools/bench --replot DIR` on a fixture
# (tests/e2e/bench_report: a results.json and two `migrate --record` files
# with tick lines) must rebuild report.md with the figures the fixture
# implies -- rates from the ticks (a null counter is missing, not 0; a tick
# 10 ms after another is folded into the next interval), derived figures and
# targets, the histogram's quantiles -- and every PNG through gnuplot.
. tests/e2e/lib.sh
FX=tests/e2e/bench_report
R=$T/fx/report.md

if ! command -v gnuplot >/dev/null 2>&1; then
	bad "gnuplot is needed for make bench's plots (Debian: gnuplot-nox, tools/deps.list)"
	finish
	exit
fi

cp -r "$FX" "$T/fx"
python3 tools/bench --replot "$T/fx" >"$T/replot.out" 2>&1
check "replot exits 0 $(tail -n 3 "$T/replot.out")" [ $? -eq 0 ]
check "replot writes report.md" [ -s "$R" ]

# cell ROW_REGEX COLUMN: COLUMN of the first row matching ROW_REGEX in a
# markdown table of report.md that has COLUMN ("<none>" if there is none)
cell() {
	python3 - "$R" "$1" "$2" <<'EOF'
import re, sys
path, row_rx, col = sys.argv[1:]
lines = open(path).read().splitlines()
split = lambda ln: [c.strip() for c in ln.strip().strip("|").split("|")]
head = None
for i, ln in enumerate(lines):
    if not ln.startswith("|"):
        head = None
    elif i + 1 < len(lines) and lines[i + 1].startswith("|---"):
        head = split(ln)
    elif head and col in head and not ln.startswith("|---") and re.search(row_rx, ln):
        print(split(ln)[head.index(col)])
        sys.exit(0)
print("<none>")
EOF
}

# expect ROW_REGEX COLUMN VALUE
expect() {
	got=$(cell "$1" "$2")
	check "report: [$1] $2 = $3 (got $got)" [ "$got" = "$3" ]
}

# --- rates from the timeline (records/*.jsonl) -------------------------------
H='postcopy-d1g-1G-zipf-hybrid '
expect "$H" ticks 25
expect "$H" "longest gap s" 0.250
expect "$H" "switch at s" 1.20
expect "$H" "post-copy s" 1.00
expect "$H" "wire Mbit/s post-copy" 400.0
# the 10 ms tick at 1.21 s carries a 2 MB burst: 1600 Mbit/s unless folded
expect "$H" "peak wire Mbit/s" 1000.0
expect "$H" "faults/s post-copy" 300.0
expect "$H" "work/s before" 20000
expect "$H" "work/s post-copy" 12500
# guest_units is null at 2.0 s (taken as 0 it would give a negative rate)
expect "$H" "min work/s post-copy" 5000
expect "$H" "owed at switch" 20000
P='postcopy-d1g-1G-zipf-postcopy '
expect "$P" "wire Mbit/s post-copy" 800.0
expect "$P" "faults/s post-copy" 100.0
expect "$P" "work/s before" 10000
expect "$P" "work/s post-copy" 9000

# --- derived figures and targets (results.json) ------------------------------
expect '\| zipf \| postcopy \|' "link use" 90%
expect '\| zipf \| postcopy \|' "target s" 8.80
expect '\| zipf \| postcopy \|' work 0.92
expect '\| zipf \| postcopy \|' targets "D+ T- W+ F- L+ N+"
expect '\| zipf \| hybrid \|' targets "D+ T+ W- F+ L- N+"
expect '\| seq150 \| precopy \|' result not-conv.
expect '\| seq150 \| precopy \|' verify "ok (src)"
expect '\| idle \| - \| precopy \|' "link use" 6%
expect '\| idle \| - \| precopy \|' "wire/nz" 1.00
expect '\| 100 \| zipf \| postcopy \|' "blocked RTTs" 38.3
expect 'guest / host' median 0.750
check "report: the failed pre-copy listed" grep -q "did not migrate: postcopy 1gbit 1G seq150 precopy" "$R"

# --- the destination's histogram ---------------------------------------------
expect "$P" faults 1000
expect "$P" "mean us" 200
expect "$P" "p50 <= us" 128
expect "$P" "p99 <= us" 512

# --- the plots ---------------------------------------------------------------
for png in timeline-postcopy-d1g-1G-zipf-hybrid timeline-postcopy-d1g-1G-zipf-postcopy \
	latency-postcopy-d1g-1G-zipf-postcopy bars-mig-1gbit-1G bars-postcopy-1gbit-1G \
	bars-wan-1gbit-rtt100_1-1G; do
	f=$T/fx/$png.png
	sig=$(od -An -tx1 -N8 "$f" 2>/dev/null | tr -d ' \n')
	check "$png.png starts with the PNG signature ($sig)" [ "$sig" = 89504e470d0a1a0a ]
	check "$png.png is a picture ($(wc -c <"$f" 2>/dev/null) bytes)" [ "$(wc -c <"$f" 2>/dev/null || echo 0)" -gt 2000 ]
	check "report.md shows $png.png" grep -qF "]($png.png)" "$R"
done
check "no plot failed" not grep -q "plot failed" "$R"

# --- without results.json: an error, not an empty report ---------------------
mkdir "$T/empty"
python3 tools/bench --replot "$T/empty" >"$T/empty.out" 2>&1
check "replot of a directory without results.json fails" [ $? -ne 0 ]
# the matrix lists without KVM or root
QUICK=1 python3 tools/bench --list >"$T/list.out" 2>&1
check "QUICK=1 --list exits 0 and names the cells" grep -q "^wan  *wan-rtt" "$T/list.out"

finish
