#!/bin/sh
# fresh-machine.sh — check the README's quick start on a minimal Debian 12.
#
#   sh tools/fresh-machine.sh [--keep] [--rebuild] [--head] [--timeout S]   (as root)
#
# Builds (once) a `debootstrap --variant=minbase bookworm` root and caches it
# as build/fresh-machine/bookworm-minbase.tar; each run extracts a fresh copy
# into /var/tmp/hybridmig-fresh.XXXXXX/root (outside the tree: make must
# not find its build/*.d), copies in the project (the files
# `git ls-files` lists plus untracked, not ignored ones: uncommitted work is
# checked), the host's resolv.conf and apt settings (proxy, snapshot,
# debian.org sources), then, in a private mount + PID namespace (nothing is
# mounted on the host; every process left inside dies with it), mounts /proc,
# /sys (recursive bind: host tracefs/debugfs come along), a fresh bpffs,
# /dev (bind), /dev/pts, a tmpfs on /dev/shm and /run, chroots and runs, in
# /root/hybridmig, exactly:
#       sh tools/setup.sh
#       make check
# with HM_REQUIRE set as .ci/run sets it: uffd and bpf always, kvm where
# /dev/kvm opens (a missing facility fails instead of skipping).
# Everything printed is also written to build/fresh-machine/log.txt. The last
# lines summarise: each command passed/failed and its duration, and the test
# totals. Exit status 0 only when both commands succeeded.
#
#   --keep     keep the scratch root (its path is printed) for debugging
#   --rebuild  redo debootstrap and replace the cached tarball
#   --head     check the last commit (git archive HEAD), not the working tree
#   --timeout S  stop a command still running after S seconds (default 3600);
#              a process a command leaves running is named, then killed
set -u

KEEP=0
REBUILD=0
HEAD=0
TIMEOUT=3600
while [ $# -gt 0 ]; do
	a=$1
	shift
	case $a in
	--timeout)
		TIMEOUT=${1:-}
		[ $# -gt 0 ] && shift
		case $TIMEOUT in '' | *[!0-9]*) echo "fresh-machine: --timeout needs seconds" >&2; exit 2 ;; esac
		;;
	--keep) KEEP=1 ;;
	--rebuild) REBUILD=1 ;;
	--head) HEAD=1 ;;
	-h | --help)
		sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: sh tools/fresh-machine.sh [--keep] [--rebuild] [--head] [--timeout S]" >&2
		exit 2
		;;
	esac
done

if [ "$(id -u)" != 0 ]; then
	echo "fresh-machine: must run as root (debootstrap, mounts, chroot)" >&2
	exit 1
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=$REPO/build/fresh-machine
TAR=$DIR/bookworm-minbase.tar
LOG=$DIR/log.txt
MIRROR=http://deb.debian.org/debian
PROJ=/root/hybridmig
mkdir -p "$DIR"

# ---- everything from here on goes to the terminal and to log.txt ---------
FIFO=$DIR/.log.fifo.$$
rm -f "$FIFO"
mkfifo "$FIFO" || exit 1
tee "$LOG" <"$FIFO" &
TEE_PID=$!
exec >"$FIFO" 2>&1
rm -f "$FIFO"

SCRATCH=""
B=""
finish() {
	rc=$?
	trap - EXIT INT TERM HUP
	# an interrupted debootstrap: its half-built root (nothing is mounted
	# there once debootstrap has exited) and tarball
	if [ -n "$B" ]; then
		rm -rf --one-file-system "$B"
		rm -f "$TAR.tmp"
	fi
	if [ -n "$SCRATCH" ] && [ -d "$SCRATCH" ]; then
		# The mounts lived only in the namespace, which is gone with its
		# last process; refuse to delete anything if one shows up here.
		if awk -v p="$SCRATCH/" 'index($5 "/", p) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
			echo "fresh-machine: mounts remain under $SCRATCH; not deleting it" >&2
			rc=1
		elif [ "$KEEP" = 1 ]; then
			echo "fresh-machine: kept the scratch root: $SCRATCH/root"
		else
			rm -rf --one-file-system "$SCRATCH"
		fi
	fi
	exec >&- 2>&-
	wait "$TEE_PID" 2>/dev/null
	exit "$rc"
}
trap finish EXIT
trap 'echo "fresh-machine: interrupted"; exit 130' INT
trap 'echo "fresh-machine: terminated"; exit 143' TERM
trap 'exit 129' HUP

die() {
	echo "fresh-machine: $*" >&2
	exit 1
}

# ---- 1. the cached minbase root -------------------------------------------
# debootstrap fetches with wget, which reads http_proxy but not apt's config:
# pass apt's proxy on if the host has one.
if [ -z "${http_proxy:-}" ]; then
	p=$(apt-config shell P Acquire::http::Proxy 2>/dev/null) && eval "$p"
	if [ -n "${P:-}" ] && [ "$P" != DIRECT ]; then
		http_proxy=$P
		export http_proxy
	fi
fi

if [ "$REBUILD" = 1 ] || [ ! -s "$TAR" ]; then
	if ! command -v debootstrap >/dev/null 2>&1; then
		echo "fresh-machine: installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap </dev/null ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap </dev/null; } ||
			die "cannot install debootstrap"
	fi
	B=$(mktemp -d "${TMPDIR:-/var/tmp}/hybridmig-debootstrap.XXXXXX") || die "mktemp failed"
	chmod 0755 "$B"
	echo "fresh-machine: debootstrap --variant=minbase bookworm ($MIRROR)"
	t0=$(date +%s)
	# in a private mount namespace: the /proc and /sys debootstrap mounts in
	# the target cannot outlive it, even when it is interrupted
	unshare --mount --propagation private \
		debootstrap --variant=minbase bookworm "$B" "$MIRROR" </dev/null || die "debootstrap failed"
	tar -C "$B" --numeric-owner -cf "$TAR.tmp" . || die "cannot write $TAR"
	mv "$TAR.tmp" "$TAR"
	rm -rf --one-file-system "$B"
	B=""
	echo "fresh-machine: cached $TAR ($(($(date +%s) - t0)) s)"
fi

# ---- 2. a fresh copy, the host's network and apt settings, the project ----
# outside the repository: the host's make must not see the root's build/
SCRATCH=$(mktemp -d "${TMPDIR:-/var/tmp}/hybridmig-fresh.XXXXXX") || die "mktemp failed"
R=$SCRATCH/root
mkdir "$R"
echo "fresh-machine: extracting $TAR into $R"
tar -C "$R" --numeric-owner -xpf "$TAR" || die "cannot extract $TAR"
# a root directory is 0755 on a real machine; mktemp -d made debootstrap's 0700,
# and tar kept it: then no other uid could reach /tmp (test_control's uid 65534)
chmod 0755 "$R"

cat /etc/resolv.conf >"$R/etc/resolv.conf" 2>/dev/null || true
# apt settings: the host files that say how to reach the mirror (proxy,
# validity of a snapshot's Release files, http/https options), and the
# host's sources that point only at debian.org (the suites a Debian 12
# install has: bookworm, -updates, -security).
for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
	[ -f "$f" ] || continue
	grep -Eqi 'proxy|Check-Valid-Until|Check-Date|Acquire::https?::' "$f" &&
		cp "$f" "$R/etc/apt/apt.conf.d/${f##*/}"
done
[ -f "$R/etc/apt/apt.conf.d/apt.conf" ] && mv "$R/etc/apt/apt.conf.d/apt.conf" "$R/etc/apt/apt.conf.d/00host-apt.conf"
nsrc=0
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	hosts=$(grep -v '^[[:space:]]*#' "$f" | grep -Eo '[a-z]+://[^/[:space:]]+' | sed 's,.*://,,')
	[ -n "$hosts" ] || continue
	echo "$hosts" | grep -vq '\(^\|\.\)debian\.org$' && continue
	case $f in
	/etc/apt/sources.list) cp "$f" "$R/etc/apt/sources.list.d/host.list" ;;
	*) cp "$f" "$R/etc/apt/sources.list.d/" ;;
	esac
	nsrc=$((nsrc + 1))
done
# the host's sources replace debootstrap's one-line sources.list
[ "$nsrc" -gt 0 ] && rm -f "$R/etc/apt/sources.list"

mkdir -p "$R$PROJ"
if [ "$HEAD" = 1 ]; then
	echo "fresh-machine: copying the project (git archive HEAD: $(git -C "$REPO" log -1 --format='%h %s')) to $PROJ"
	git -C "$REPO" archive --format=tar HEAD | tar -C "$R$PROJ" -xf - || die "cannot copy the project"
else
	echo "fresh-machine: copying the project (git ls-files, uncommitted work included) to $PROJ"
	(cd "$REPO" && git ls-files -z --cached --others --exclude-standard) |
		(cd "$REPO" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh) |
		(cd "$REPO" && tar --null -T - -cf -) |
		tar -C "$R$PROJ" -xf - || die "cannot copy the project"
fi

# ---- 3. what runs inside --------------------------------------------------
# Inside the chroot: the two quick-start commands, each timed, under a
# timeout, its output also kept in /root/.fresh-NAME.log (for the totals).
# A process a command leaves behind (a leak; it would also keep the log
# open) is listed and killed; PID 1 is enter.sh.
cat >"$R/root/.fresh-inner.sh" <<'EOF'
#!/bin/sh
TIMEOUT=$1
cd /root/hybridmig || exit 1
leftovers() {
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		case " 1 $$ $1 " in *" $p "*) continue ;; esac
		c=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
		[ -n "$c" ] || continue
		echo "fresh-machine: left running by $2: pid $p: $c"
		kill -9 "$p" 2>/dev/null
	done
}
run() {
	name=$1
	shift
	echo
	echo "fresh-machine: ==== $name"
	t0=$(date +%s)
	rm -f /root/.fresh-fifo
	mkfifo /root/.fresh-fifo
	tee "/root/.fresh-$name.log" </root/.fresh-fifo &
	tp=$!
	timeout -k 10 "$TIMEOUT" "$@" </dev/null >/root/.fresh-fifo 2>&1
	rc=$?
	t=$(($(date +%s) - t0))
	leftovers "$tp" "$name"
	wait "$tp"
	rm -f /root/.fresh-fifo
	echo "$name $rc $t" >>/root/.fresh-result
	case $rc in
	124 | 137) echo "fresh-machine: ==== $name: timed out after $TIMEOUT s (exit $rc)" ;;
	*) echo "fresh-machine: ==== $name: exit $rc" ;;
	esac
}
run setup sh tools/setup.sh
# as .ci/run: KVM is required only where the machine has it
HM_REQUIRE=uffd,bpf
if [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; then HM_REQUIRE=kvm,$HM_REQUIRE; fi
export HM_REQUIRE
echo "fresh-machine: HM_REQUIRE=$HM_REQUIRE"
run check make check
EOF

# in the new mount + PID namespaces, before chroot
cat >"$SCRATCH/enter.sh" <<'EOF'
set -e
R=$1
mount --make-rprivate /
# the root a mount point of its own: `ip netns exec` remounts / (MS_SLAVE),
# which fails with EINVAL when / is a plain directory
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
# a fresh bpffs (a Debian 12 host with systemd has one), unless /sys brought one
if grep -qw bpf /proc/filesystems && [ -d "$R/sys/fs/bpf" ] &&
	! awk -v p="$R/sys/fs/bpf" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo; then
	mount -t bpf bpf "$R/sys/fs/bpf"
fi
mount --bind /dev "$R/dev"
mount --bind /dev/pts "$R/dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$R/dev/shm"
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$R/run"
mkdir -p "$R/run/lock"
set +e
chroot "$R" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/sh \
	TERM="${TERM:-dumb}" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
	${no_proxy:+no_proxy=$no_proxy} \
	/bin/sh /root/.fresh-inner.sh "$2"
EOF

echo "fresh-machine: entering the root (unshare --mount --pid --fork, chroot)"
unshare --mount --pid --fork --propagation private sh "$SCRATCH/enter.sh" "$R" "$TIMEOUT" </dev/null
urc=$?

# ---- 4. summary -----------------------------------------------------------
st=0
summary=""
for step in setup check; do
	case $step in
	setup) what="sh tools/setup.sh" ;;
	check) what="make check" ;;
	esac
	line=$(grep "^$step " "$R/root/.fresh-result" 2>/dev/null | tail -n 1)
	if [ -z "$line" ]; then
		summary="$summary${summary:+, }$what NOT RUN"
		st=1
		continue
	fi
	set -- $line
	if [ "$2" = 0 ]; then
		summary="$summary${summary:+, }$what PASSED (${3} s)"
	else
		summary="$summary${summary:+, }$what FAILED (exit $2, ${3} s)"
		st=1
	fi
done
[ "$urc" = 0 ] || { [ "$st" = 1 ] || echo "fresh-machine: the namespace exited $urc"; st=1; }
echo
totals=$(grep -a '^total: .* passed, .* failed' "$R/root/.fresh-check.log" 2>/dev/null | tail -n 1)
failed=$(grep -a '^failed: ' "$R/root/.fresh-check.log" 2>/dev/null | tail -n 1)
[ -n "$failed" ] && echo "fresh-machine: tests $failed"
echo "fresh-machine: tests ${totals:-total: (none: make check printed no totals)}"
if [ "$st" = 0 ]; then
	echo "fresh-machine: PASS: $summary"
else
	echo "fresh-machine: FAIL: $summary"
fi
exit "$st"
