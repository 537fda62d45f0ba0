#!/bin/sh
# make demo: run the dirtier guest for a few seconds with the I/O device on,
# verify at the end, and print the summary. (Migration joins when it exists.)
set -e
O=${O:-build}
echo "== hybridmig demo: a 2-vCPU dirtier guest, 4 s, DMA device at 50 MB/s"
"$O/hybridmig" run --mem 1G --vcpus 2 --guest dirtier:wss=128M,pattern=zipf,io=50 --seconds 4
