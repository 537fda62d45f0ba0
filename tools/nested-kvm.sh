#!/bin/sh
# nested-kvm.sh — a Debian 12 VM with a working /dev/kvm, for machines without one.
#
#   sh tools/nested-kvm.sh build [--rebuild]   make the disk image (as root; cached)
#   sh tools/nested-kvm.sh up                  boot it; wait for ssh and /dev/kvm inside
#   sh tools/nested-kvm.sh sync [--clean]      copy the work tree to the guest's /root/hybridmig
#   sh tools/nested-kvm.sh run CMD...          run CMD there (in /root/hybridmig), exit with its status
#   sh tools/nested-kvm.sh ssh [CMD...]        interactive shell (or CMD) in the guest
#   sh tools/nested-kvm.sh status              is it running, and how to reach it
#   sh tools/nested-kvm.sh down                power it off; wait for QEMU to exit
#
# The project's KVM tests need /dev/kvm, which this machine and CI lack. QEMU
# in pure software emulation (TCG) can still offer an emulated CPU with AMD's
# SVM, so a guest booted that way loads kvm_amd and gets a real /dev/kvm: the
# tests' VMs then run as nested guests of the TCG guest. Slow, but it works
# without any hardware support.
#
# Everything lives in build/nested/ (gitignored; `make clean` deletes it):
#   rootfs.img        raw ext4 root disk (sparse, NESTED_DISK, default 8G)
#   vmlinuz initrd.img  the guest's kernel and initramfs, copied out of the
#                     image: QEMU boots them directly (no bootloader in the image)
#   id_ed25519[.pub]  the ssh key root in the guest accepts
#   ssh_config        `ssh -F build/nested/ssh_config hm-nested` reaches the guest
#   console.log       the guest's serial console (console.sock: the same
#                     console, interactive: root is logged in there)
#   qemu.pid build.log deps.list (the tools/deps.list the image was built with)
#
# build:  debootstrap a minimal bookworm from the mirror this machine's apt
#         uses, then apt-get the kernel, systemd, sshd and every package of
#         tools/deps.list (plus git: the makefile runs git describe), then
#         mkfs.ext4 -d the tree into the image. Nothing is mounted on the host.
# up:     boots QEMU in the background, waits (NESTED_BOOT_TIMEOUT seconds,
#         default 900) until ssh answers, /dev/kvm exists and the KVM holder
#         (below) runs.
# sync:   replaces the guest's /root/hybridmig with the files `git ls-files`
#         lists (uncommitted and untracked, not ignored, work included) and
#         .git. The guest's build*/ directories are kept so make stays
#         incremental: files whose content did not change keep their old
#         mtime, changed ones get the current time. --clean drops them.
# run:    the arguments are joined with spaces and run by the guest's shell
#         (like ssh), e.g. run 'make -j2 tests && build/tests/test_vm.test'.
#         Exit status 255 may also mean ssh itself failed.
#
# Settings (environment): NESTED_SSH_PORT (10022), NESTED_MEM (8G),
# NESTED_SMP (1: with 2, the guest's kernel panicked under the test suite,
# "corrupted stack end detected inside scheduler"), NESTED_DISK (8G, at
# build), NESTED_BOOT_TIMEOUT (900), NESTED_MIRROR (default: this machine's
# bookworm mirror).
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
D=$REPO/build/nested
IMG=$D/rootfs.img
KERNEL=$D/vmlinuz
INITRD=$D/initrd.img
KEY=$D/id_ed25519
SSHCFG=$D/ssh_config
PIDFILE=$D/qemu.pid
CONSOLE=$D/console.log
CONSOLE_SOCK=$D/console.sock
BUILDLOG=$D/build.log
HOST=hm-nested
PROJ=/root/hybridmig
PORT=${NESTED_SSH_PORT:-10022}
MEM=${NESTED_MEM:-8G}
SMP=${NESTED_SMP:-1}
DISK=${NESTED_DISK:-8G}
BOOT_TIMEOUT=${NESTED_BOOT_TIMEOUT:-900}
# a unix socket path must fit in 108 bytes, and ssh appends ~20 characters
# to it while creating the socket
CTL=$D/ssh.ctl
[ ${#CTL} -le 80 ] || CTL=/tmp/hm-nested.$(id -u).ctl

die() {
	echo "nested-kvm: $*" >&2
	exit 1
}
say() {
	echo "nested-kvm: $*"
}
usage() {
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

# One build/up/sync/down at a time: they create or remove the same files.
# The lock is fd 9; every command that may leave a process behind (QEMU's
# daemon, ssh's master connection) runs with fd 9 closed, or that process
# would hold the lock for as long as it lives.
lock() {
	mkdir -p "$D"
	exec 9>"$D/.lock"
	flock -w "$1" 9 || die "another nested-kvm.sh still holds $D/.lock after $1 s"
}

# The QEMU of the pidfile, if it still runs (and is ours: a recycled pid of
# some other process does not count).
qemu_pid() {
	[ -s "$PIDFILE" ] || return 1
	qp=$(cat "$PIDFILE")
	case $qp in '' | *[!0-9]*) return 1 ;; esac
	tr '\0' ' ' <"/proc/$qp/cmdline" 2>/dev/null | grep -q "qemu-system.*$IMG" || return 1
	echo "$qp"
}
running() {
	qemu_pid >/dev/null
}

# ssh through the generated config: key, port, no host key checks (the
# guest's keys are baked into an image we just built, and the port is
# loopback only), one multiplexed connection (TCG makes every new ssh
# handshake cost seconds), keepalives that notice a dead guest after 10
# minutes rather than never.
write_ssh_config() {
	cat >"$SSHCFG" <<EOF
# written by tools/nested-kvm.sh; use: ssh -F $SSHCFG $HOST
Host $HOST
	HostName 127.0.0.1
	Port $PORT
	User root
	IdentityFile "$KEY"
	IdentitiesOnly yes
	StrictHostKeyChecking no
	UserKnownHostsFile /dev/null
	LogLevel ERROR
	ControlMaster auto
	ControlPath "$CTL"
	ControlPersist 10m
	ServerAliveInterval 30
	ServerAliveCountMax 20
	ConnectTimeout 20
EOF
}
gssh() {
	ssh -F "$SSHCFG" "$@" 9>&-
}
need_running() {
	running || die "the VM is not running (tools/nested-kvm.sh up)"
	[ -f "$SSHCFG" ] || write_ssh_config
}

# ---- build ----------------------------------------------------------------

# Every Debian archive entry this machine's apt uses, as "URI SUITE COMPONENTS":
# entries with the component main that are signed by Debian's keyring (or
# name no key), so third-party repositories with a "bookworm" suite are left
# out. Reads both the one-line (.list) and the deb822 (.sources) format.
host_debian_sources() {
	set --
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && set -- "$@" "$f"
	done
	[ $# -gt 0 ] || return 0
	awk '
	function flush(   i, j, nu, ns, U, S) {
		if (deb && enabled && uris != "" && comps ~ /(^| )main( |$)/ &&
		    (signed == "" || signed ~ /debian-archive-keyring/)) {
			nu = split(uris, U, " "); ns = split(suites, S, " ")
			for (i = 1; i <= nu; i++)
				for (j = 1; j <= ns; j++)
					print U[i], S[j], comps
		}
		deb = 0; enabled = 1; uris = suites = comps = signed = ""
	}
	BEGIN { enabled = 1 }
	FNR == 1 { flush() }
	FILENAME ~ /\.sources$/ {
		if ($0 ~ /^[ \t]*#/) next
		if ($0 ~ /^[ \t]*$/) { flush(); next }
		if ($0 ~ /^[ \t]/) next        # continuation, e.g. an inline key
		key = tolower($0); sub(/:.*/, "", key)
		val = $0; sub(/^[^:]*:[ \t]*/, "", val)
		if (key == "types") deb = (" " val " " ~ / deb /)
		else if (key == "uris") uris = val
		else if (key == "suites") suites = val
		else if (key == "components") comps = val
		else if (key == "enabled") enabled = (tolower(val) != "no")
		else if (key == "signed-by") signed = (val ~ /^\// ? val : "inline")
		next
	}
	{
		sub(/#.*/, "")
		if ($1 != "deb") next
		opts = ""
		if (match($0, /\[[^]]*\]/)) {
			opts = substr($0, RSTART, RLENGTH)
			$0 = substr($0, 1, RSTART - 1) substr($0, RSTART + RLENGTH)
		}
		if (NF < 4) next
		signed = ""
		if (match(opts, /signed-by=[^] \t]*/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
		deb = 1; uris = $2; suites = $3
		comps = $4; for (i = 5; i <= NF; i++) comps = comps " " $i
		flush()
	}
	END { flush() }' "$@"
}

# run a build step with its output in build.log; on failure show its end
logged() {
	if ! "$@" >>"$BUILDLOG" 2>&1 </dev/null; then
		echo "nested-kvm: failed: $*" >&2
		echo "---- last lines of $BUILDLOG:" >&2
		tail -n 25 "$BUILDLOG" >&2
		exit 1
	fi
}

ROOT=""
build_cleanup() {
	# an interrupted or failed build: its half-made tree and image. The
	# chroot's mounts lived in a namespace that died with its last process;
	# refuse to delete anything if one shows up here anyway.
	if [ -n "$ROOT" ] && [ -d "$ROOT" ]; then
		if awk -v p="$ROOT/" 'index($5 "/", p) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
			echo "nested-kvm: mounts remain under $ROOT; not deleting it" >&2
		else
			rm -rf --one-file-system "$ROOT"
		fi
	fi
	rm -f "$IMG.tmp"
}

cmd_build() {
	rebuild=0
	for a; do
		case $a in
		--rebuild) rebuild=1 ;;
		*) die "usage: tools/nested-kvm.sh build [--rebuild]" ;;
		esac
	done
	lock 60
	if [ "$rebuild" = 0 ] && [ -s "$IMG" ] && [ -s "$KERNEL" ] && [ -s "$INITRD" ]; then
		say "image exists: $IMG (build --rebuild to make a new one)"
		if ! cmp -s "$REPO/tools/deps.list" "$D/deps.list"; then
			say "warning: tools/deps.list changed since the image was built;" \
				"install the new packages inside (run 'sh tools/deps.sh') or build --rebuild"
		fi
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "build must run as root (debootstrap, chroot)"
	running && die "the VM is running on this image; tools/nested-kvm.sh down first"
	sh "$REPO/tools/deps.sh" debootstrap e2fsprogs openssh-client util-linux ||
		die "cannot install the host packages build needs"

	# the Debian mirror(s) of this machine's apt (a snapshot or a local
	# mirror is what makes the guest's packages match the host's)
	srcs=$(host_debian_sources | awk '$2 ~ /^bookworm(-updates|-security)?$/ && !seen[$1 " " $2]++')
	if [ -n "${NESTED_MIRROR:-}" ]; then
		mirror=$NESTED_MIRROR
		srcs=$(printf '%s\n' "$mirror bookworm main" "$mirror bookworm-updates main" \
			"$(echo "$srcs" | awk '$2 == "bookworm-security"')")
	else
		mirror=$(echo "$srcs" | awk '$2 == "bookworm" { print $1; exit }')
		[ -n "$mirror" ] || die "no Debian bookworm entry in /etc/apt/sources.list{,.d}; set NESTED_MIRROR=http://.../debian"
	fi
	# debootstrap fetches with wget, which reads http_proxy, not apt's config
	if [ -z "${http_proxy:-}" ]; then
		P=""
		p=$(apt-config shell P Acquire::http::Proxy 2>/dev/null) && eval "$p"
		if [ -n "$P" ] && [ "$P" != DIRECT ]; then
			http_proxy=$P
			export http_proxy
		fi
	fi

	mkdir -p "$D"
	: >"$BUILDLOG"
	trap build_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	rm -f "$IMG" "$KERNEL" "$INITRD"
	[ -s "$KEY" ] || logged ssh-keygen -q -t ed25519 -N '' -C "$HOST" -f "$KEY"
	t0=$(date +%s)
	# the tree is built outside the repository: the makefile includes every
	# *.d file it finds under build/, and a Debian root has some
	ROOT=$(mktemp -d "${TMPDIR:-/var/tmp}/hm-nested-root.XXXXXX") || die "mktemp failed"
	chmod 0755 "$ROOT"

	# 1. minbase: the rest comes from apt inside, with all the host's suites
	say "debootstrap bookworm from $mirror (log: $BUILDLOG)"
	# in a private mount namespace: the /proc and /sys debootstrap mounts in
	# the target cannot outlive it, even when it is interrupted
	logged unshare --mount --propagation private \
		debootstrap --variant=minbase bookworm "$ROOT" "$mirror"

	# 2. apt settings: the host's Debian suites; the host's files that say
	# how to reach the mirror (proxy, a snapshot's expired Release files)
	echo "$srcs" | awk 'NF { print "deb", $0 }' >"$ROOT/etc/apt/sources.list"
	for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
		[ -f "$f" ] || continue
		grep -Eqi 'proxy|Check-Valid-Until|Check-Date|Acquire::https?::' "$f" &&
			cp "$f" "$ROOT/etc/apt/apt.conf.d/50host-${f##*/}"
	done
	cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
	# no service starts inside the chroot
	printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
	chmod 0755 "$ROOT/usr/sbin/policy-rc.d"

	# 3. the packages. The kernel comes from the same suites as the rest (a
	# security update would otherwise leave two kernels). git: the makefile's
	# version is git describe. python3: the KVM holder below.
	pkgs="linux-image-amd64 initramfs-tools zstd systemd-sysv udev kmod dbus
		openssh-server iproute2 rsync git ca-certificates less python3
		$(grep -v '^[[:space:]]*#' "$REPO/tools/deps.list")"
	# shellcheck disable=SC2086 # a list of packages
	say "apt-get install in the guest root: kernel, systemd, sshd, tools/deps.list ($(echo $pkgs | wc -w) packages)"
	# a mount and PID namespace: /proc, /sys and /dev exist only for the
	# chroot's processes, and none of them outlives this step
	# shellcheck disable=SC2016,SC2086 # the inner script's variables; a list of packages
	logged unshare --mount --pid --fork --propagation private sh -c '
		set -eu
		R=$1
		shift
		mount -t proc proc "$R/proc"
		mount -t sysfs sysfs "$R/sys"
		mount --rbind /dev "$R/dev"
		export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
		chroot "$R" apt-get -q update
		chroot "$R" apt-get -q -y dist-upgrade
		chroot "$R" apt-get -q -y --no-install-recommends install "$@"
		chroot "$R" apt-get -q clean
	' sh "$ROOT" $pkgs

	# 4. the system's configuration
	say "configuring the guest"
	rm -f "$ROOT/usr/sbin/policy-rc.d"
	echo "$HOST" >"$ROOT/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$HOST" >"$ROOT/etc/hosts"
	echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$ROOT/etc/fstab"
	# QEMU's user-mode network: DHCP from 10.0.2.2, its DNS relay at 10.0.2.3
	echo 'nameserver 10.0.2.3' >"$ROOT/etc/resolv.conf"
	mkdir -p "$ROOT/etc/systemd/network"
	printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$ROOT/etc/systemd/network/20-wired.network"
	install -d -m 0700 "$ROOT/root/.ssh"
	install -m 0600 "$KEY.pub" "$ROOT/root/.ssh/authorized_keys"
	# The serial console: root logged in (the console is a socket under
	# build/nested/, as private as the ssh key); root has no password.
	mkdir -p "$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d"
	cat >"$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF
	# KVM inside: the emulated CPU offers SVM (QEMU's TCG emulates AMD's,
	# not Intel's VMX), so kvm_amd; nested=1 is its default, and stated
	# anyway since the tests' guests depend on it. udev may load the module
	# first (CPU modalias), so the option goes to modprobe.d as well.
	printf 'options kvm_amd nested=1\noptions kvm_intel nested=1\n' >"$ROOT/etc/modprobe.d/hm-kvm.conf"
	cat >"$ROOT/usr/local/sbin/hm-kvm-setup" <<'EOF'
#!/bin/sh
# Load the KVM module for the virtualization extension the CPU offers.
set -eu
if grep -qw svm /proc/cpuinfo; then
	modprobe kvm_amd nested=1
elif grep -qw vmx /proc/cpuinfo; then
	modprobe kvm_intel nested=1
else
	echo "hm-kvm-setup: the CPU offers neither svm nor vmx (QEMU needs -cpu max or +svm)" >&2
	exit 1
fi
udevadm settle --timeout=60 || true
[ -c /dev/kvm ] || { echo "hm-kvm-setup: no /dev/kvm after loading KVM" >&2; exit 1; }
EOF
	# The holder. Under TCG the guest was seen to freeze for a long time
	# when the tests created and destroyed KVM VMs; with two idle VMs kept
	# open it did not. (Presumably: while any VM exists KVM keeps SVM
	# enabled on every CPU, so the tests' VMs never make it switch it on
	# and off again, which TCG handles very slowly.) Readiness is signalled
	# to systemd (Type=notify) only once both VMs exist.
	cat >"$ROOT/usr/local/sbin/hm-kvm-holder" <<'EOF'
#!/usr/bin/python3
"""Keep two idle KVM VMs open, forever (see hm-kvm-holder.service)."""
import fcntl, os, signal, socket

KVM_CREATE_VM = 0xAE01
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
vms = [fcntl.ioctl(kvm, KVM_CREATE_VM, 0) for _ in range(2)]
addr = os.environ.get("NOTIFY_SOCKET")
if addr:
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"READY=1", addr)
print("holding KVM VMs", vms, flush=True)
while True:
    signal.pause()
EOF
	chmod 0755 "$ROOT/usr/local/sbin/hm-kvm-setup" "$ROOT/usr/local/sbin/hm-kvm-holder"
	cat >"$ROOT/etc/systemd/system/hm-kvm.service" <<'EOF'
[Unit]
Description=Load KVM (nested) for the emulated CPU
After=systemd-udevd.service systemd-modules-load.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/hm-kvm-setup

[Install]
WantedBy=multi-user.target
EOF
	cat >"$ROOT/etc/systemd/system/hm-kvm-holder.service" <<'EOF'
[Unit]
Description=Keep two idle KVM VMs open (avoids long guest stalls under QEMU TCG)
Requires=hm-kvm.service
After=hm-kvm.service
StartLimitIntervalSec=120
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/local/sbin/hm-kvm-holder
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF
	# Periodic jobs cost minutes of emulated CPU and would land in the
	# middle of test runs: masked.
	logged chroot "$ROOT" systemctl enable systemd-networkd.service ssh.service \
		serial-getty@ttyS0.service hm-kvm.service hm-kvm-holder.service
	logged chroot "$ROOT" systemctl mask apt-daily.timer apt-daily-upgrade.timer \
		man-db.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer logrotate.timer

	# 5. kernel and initramfs out, the tree into an ext4 image
	vmlinuz=$(find "$ROOT/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
	[ -n "$vmlinuz" ] || die "no kernel in $ROOT/boot"
	kver=${vmlinuz##*/vmlinuz-}
	[ -s "$ROOT/boot/initrd.img-$kver" ] || die "no initramfs for $kver in $ROOT/boot"
	cp "$vmlinuz" "$KERNEL"
	cp "$ROOT/boot/initrd.img-$kver" "$INITRD"
	say "mkfs.ext4 -d: $DISK image (kernel $kver)"
	rm -f "$IMG.tmp"
	truncate -s "$DISK" "$IMG.tmp"
	# inode tables and journal initialized now, not by the guest's
	# ext4lazyinit thread (emulated CPU time, during the first tests)
	logged mkfs.ext4 -q -F -L hm-root -E lazy_itable_init=0,lazy_journal_init=0 -d "$ROOT" "$IMG.tmp"
	rm -rf --one-file-system "$ROOT"
	ROOT=""
	cp "$REPO/tools/deps.list" "$D/deps.list"
	mv "$IMG.tmp" "$IMG"
	trap - EXIT INT TERM
	say "built $IMG in $(($(date +%s) - t0)) s ($(du -h "$IMG" | cut -f1) used)"
}

# ---- up / down ------------------------------------------------------------

# What the guest reports: ready, wait (still booting), or fail:WHY.
# shellcheck disable=SC2016 # expanded in the guest
guest_state() {
	timeout 60 ssh -F "$SSHCFG" -o BatchMode=yes "$HOST" 9>&- '
		if systemctl is-failed -q hm-kvm.service; then echo fail:hm-kvm.service
		elif systemctl is-failed -q hm-kvm-holder.service; then echo fail:hm-kvm-holder.service
		elif [ -c /dev/kvm ] && systemctl is-active -q hm-kvm-holder.service; then echo ready
		else echo wait; fi' 2>/dev/null </dev/null || echo noanswer
}

# shellcheck disable=SC2016 # expanded in the guest
guest_diagnostics() {
	timeout 60 ssh -F "$SSHCFG" -o BatchMode=yes "$HOST" 9>&- '
		echo "cpu flags: $(grep -m1 -o -w -e svm -e vmx /proc/cpuinfo || echo "no svm/vmx")"
		lsmod | grep kvm || echo "no kvm module"
		ls -l /dev/kvm
		journalctl -b --no-pager -u hm-kvm.service -u hm-kvm-holder.service | tail -n 20
		dmesg | grep -i -e kvm -e svm | tail -n 10' </dev/null >&2 || true
}

cmd_up() {
	lock 120
	if [ ! -s "$IMG" ] || [ ! -s "$KERNEL" ] || [ ! -s "$INITRD" ]; then
		die "no image in $D (tools/nested-kvm.sh build)"
	fi
	if running; then
		# its config names the port it was started with
		[ -f "$SSHCFG" ] || write_ssh_config
		say "already running (pid $(qemu_pid))"
	else
		write_ssh_config
		command -v qemu-system-x86_64 >/dev/null 2>&1 || sh "$REPO/tools/deps.sh" qemu-system-x86 ||
			die "cannot install qemu-system-x86"
		# a master connection to a previous boot would answer for this one
		gssh -O exit "$HOST" >/dev/null 2>&1 || true
		rm -f "$CTL" "$PIDFILE"
		[ -f "$CONSOLE" ] && mv "$CONSOLE" "$CONSOLE.old"
		say "booting QEMU (TCG, -cpu max: SVM; $SMP CPUs, $MEM), ssh on 127.0.0.1:$PORT"
		# -accel tcg: no KVM here. thread=multi: one host thread per vCPU;
		# tb-size: a 1 GiB translation cache (the default flushes often
		# under a compiler's code footprint). -cpu max: every feature TCG
		# emulates, SVM included, with an AMD vendor, so kvm_amd loads.
		# -nodefaults: no VGA, floppy, cdrom or default NIC. The NIC's
		# romfile is empty: we boot -kernel directly, no iPXE needed.
		# The serial console is a socket (interactive when wanted) whose
		# output is always logged to console.log. The build directory is
		# on the guest's own disk (sync), never 9p: unix sockets, which the
		# tests bind there, do not work on 9p.
		t0=$(date +%s)
		qemu-system-x86_64 \
			-name "$HOST" \
			-machine q35 \
			-accel tcg,thread=multi,tb-size=1024 \
			-cpu max -smp "$SMP" -m "$MEM" \
			-nodefaults -display none \
			-kernel "$KERNEL" -initrd "$INITRD" \
			-append 'root=/dev/vda rw console=ttyS0' \
			-drive "file=$IMG,format=raw,if=virtio" \
			-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:22" \
			-device virtio-net-pci,netdev=n0,romfile= \
			-device virtio-rng-pci \
			-chardev "socket,id=con0,path=$CONSOLE_SOCK,server=on,wait=off,logfile=$CONSOLE" \
			-serial chardev:con0 \
			-pidfile "$PIDFILE" -daemonize 9>&- ||
			die "QEMU did not start (is port $PORT free? NESTED_SSH_PORT picks another)"
		running || die "QEMU exited right after starting; see $CONSOLE"
	fi

	say "waiting for ssh and /dev/kvm in the guest (at most $BOOT_TIMEOUT s; console: $CONSOLE)"
	start=$(date +%s)
	deadline=$((start + BOOT_TIMEOUT))
	while :; do
		if ! running; then
			tail -n 30 "$CONSOLE" >&2 2>/dev/null || true
			die "QEMU exited while booting (console above, all of it in $CONSOLE)"
		fi
		st=$(guest_state)
		case $st in
		ready) break ;;
		fail:*)
			guest_diagnostics
			die "${st#fail:} failed in the guest: no usable /dev/kvm (details above)"
			;;
		esac
		if [ "$(date +%s)" -ge "$deadline" ]; then
			[ "$st" = wait ] && guest_diagnostics
			tail -n 30 "$CONSOLE" >&2 2>/dev/null || true
			die "guest not ready after $BOOT_TIMEOUT s (last state: $st; console above and in $CONSOLE)"
		fi
		sleep 5
	done
	say "ready after $(($(date +%s) - ${t0:-$start})) s: ssh -F $SSHCFG $HOST"
}

cmd_down() {
	lock 120
	if ! running; then
		say "not running"
		rm -f "$PIDFILE" "$CTL"
		return 0
	fi
	qp=$(qemu_pid)
	say "powering off (pid $qp)"
	[ -f "$SSHCFG" ] || write_ssh_config
	# the connection drops as the guest goes down: ssh's status means nothing
	timeout 60 ssh -F "$SSHCFG" -o BatchMode=yes "$HOST" 'systemctl poweroff' 9>&- </dev/null >/dev/null 2>&1 || true
	gssh -O exit "$HOST" >/dev/null 2>&1 || true
	n=0
	while running && [ $n -lt 180 ]; do
		sleep 1
		n=$((n + 1))
	done
	if running; then
		# QEMU exits cleanly on SIGTERM (for the guest: the power cord)
		say "no clean poweroff within 180 s; stopping QEMU"
		kill "$qp" 2>/dev/null || true
		n=0
		while running && [ $n -lt 30 ]; do
			sleep 1
			n=$((n + 1))
		done
		if running; then kill -9 "$qp" 2>/dev/null || true; fi
		sleep 1
		running && die "QEMU (pid $qp) does not exit"
	fi
	rm -f "$PIDFILE" "$CTL"
	say "down"
}

# ---- sync / run / ssh -----------------------------------------------------

# The project's files, NUL-separated: tracked and untracked but not ignored
# ones (uncommitted work is what we want to test), plus .git itself. Without
# git: everything but build*/ directories.
tree_files() {
	if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# shellcheck disable=SC2016 # the inner script's variable
		git -C "$REPO" ls-files -z --cached --others --exclude-standard |
			(cd "$REPO" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done; :' sh)
		[ -d "$REPO/.git" ] && printf '.git\0'
	else
		(cd "$REPO" && find . -mindepth 1 -maxdepth 1 ! -name 'build*' -print0)
	fi
}

cmd_sync() {
	clean=0
	for a; do
		case $a in
		--clean) clean=1 ;;
		*) die "usage: tools/nested-kvm.sh sync [--clean]" ;;
		esac
	done
	lock 120
	need_running
	t0=$(date +%s)
	# extracted with the current time (-m) and owned by root (a foreign
	# owner would make the guest's git refuse the repository)
	tree_files | (cd "$REPO" && tar --null -T - -cf -) |
		gssh "$HOST" "rm -rf $PROJ.new && mkdir -p $PROJ.new && tar -x -m --no-same-owner -f - -C $PROJ.new" ||
		die "copying the tree into the guest failed"
	# Unchanged files get back the old copy's mtime, so make rebuilds what
	# changed and only that (host mtimes would not do: a file edited while
	# the guest was building would look older than its object). Then the
	# old build*/ directories move over and the new copy replaces the old.
	gssh "$HOST" python3 - "$PROJ" "$clean" <<'EOF' || die "replacing $PROJ in the guest failed"
import filecmp, os, shutil, sys

old, clean = sys.argv[1], sys.argv[2] == "1"
new = old + ".new"
if os.path.isdir(old):
    for dp, dns, fns in os.walk(new):
        if dp == new and ".git" in dns:
            dns.remove(".git")
        for fn in fns:
            n = os.path.join(dp, fn)
            o = os.path.join(old, os.path.relpath(n, new))
            try:
                if (not os.path.islink(n) and not os.path.islink(o) and os.path.isfile(o)
                        and filecmp.cmp(n, o, shallow=False)):
                    st = os.stat(o)
                    os.utime(n, ns=(st.st_atime_ns, st.st_mtime_ns))
            except OSError:
                pass
    if not clean:
        for e in os.listdir(old):
            p = os.path.join(old, e)
            if (e.startswith("build") and os.path.isdir(p) and not os.path.islink(p)
                    and not os.path.lexists(os.path.join(new, e))):
                os.rename(p, os.path.join(new, e))
    shutil.rmtree(old)
os.rename(new, old)
EOF
	say "synced $REPO to $HOST:$PROJ in $(($(date +%s) - t0)) s$([ "$clean" = 1 ] && echo ' (build directories dropped)')"
}

cmd_run() {
	[ $# -gt 0 ] || die "usage: tools/nested-kvm.sh run CMD..."
	need_running
	exec ssh -F "$SSHCFG" "$HOST" "cd $PROJ 2>/dev/null || { echo 'nested-kvm: no $PROJ in the guest (tools/nested-kvm.sh sync)' >&2; exit 1; }; $*"
}

cmd_ssh() {
	need_running
	if [ $# -eq 0 ]; then
		exec ssh -F "$SSHCFG" -t "$HOST"
	fi
	exec ssh -F "$SSHCFG" "$HOST" "$@"
}

cmd_status() {
	if running; then
		say "running (pid $(qemu_pid)); ssh -F $SSHCFG $HOST; console: $CONSOLE"
	else
		say "not running$([ -s "$IMG" ] && echo " (image: $IMG)" || echo ' (no image: build)')"
		return 1
	fi
}

[ $# -gt 0 ] || {
	usage >&2
	exit 2
}
cmd=$1
shift
case $cmd in
build) cmd_build "$@" ;;
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
sync) cmd_sync "$@" ;;
run) cmd_run "$@" ;;
ssh) cmd_ssh "$@" ;;
status) cmd_status "$@" ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
