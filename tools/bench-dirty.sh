#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-dirty: harvest costs on KVM's dirty ring against its dirty log, the
# last harvest of a hybrid switch (no re-protection) against a re-protecting
# one, and the guest's write rate with and without tracking
# (tools/bench_dirty.c says what each figure is). A 4 GiB guest writing a
# 64 MiB working set by default. Figures go to $O/bench-dirty.txt.
#
# Environment: O (build dir, default build), MEM_MIB (4096), WSS_MIB (64), REPS (7).
set -e
O=${O:-build}
OUT=$O/bench-dirty.txt
BIN=$O/tools/bench_dirty

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "bench-dirty: skip: /dev/kvm is not usable"
	exit 77
fi
make --no-print-directory O="$O" all >/dev/null
mkdir -p "$O/tools"
# the VMM's objects, as the binary links them (without main)
OBJS=$(find "$O/src" "$O/uffd" "$O/policy" "$O/bpf" -name '*.o' ! -name main.o ! -name '*.bpf.o' \
	2>/dev/null)
PKGS="libevent libevent_pthreads liblz4 openssl"
pkg-config --exists libbpf && PKGS="$PKGS libbpf"
# shellcheck disable=SC2086 # lists
${CC:-cc} -O2 -g -std=gnu11 -D_GNU_SOURCE -I. -I"$O" -o "$BIN" tools/bench_dirty.c $OBJS \
	"$O/guest/blobs.o" $(pkg-config --libs $PKGS) -lpthread -lm
{
	echo "# bench-dirty $(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), mem ${MEM_MIB:-4096} MiB, wss ${WSS_MIB:-64} MiB"
	"$BIN" "${MEM_MIB:-4096}" "${WSS_MIB:-64}" "${REPS:-7}"
} | tee "$OUT"
