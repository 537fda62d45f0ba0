#!/bin/sh
# What an SRE installs and reads: --version, the man page, the bash
# completion, make install and the systemd unit of the destination. Needs no
# KVM. Commands and options are taken from the binary's own --help texts, so
# a command or an option added without its man page entry or completion
# fails here. DOC_MAN, DOC_COMP, DOC_UNIT point at other copies (to check
# that a broken one fails).
. tests/e2e/lib.sh
MAN=${DOC_MAN:-docs/hybridmig.1}
COMP=${DOC_COMP:-tools/completion/hybridmig.bash}
UNIT=${DOC_UNIT:-tools/systemd/hybridmig-incoming@.service}

# --- version ----------------------------------------------------------------
for a in --version -V version; do
	"$HM" $a >"$T/version.out" 2>"$T/version.err"
	check "hybridmig $a exits 0" [ $? -eq 0 ]
	check "hybridmig $a: 'hybridmig VERSION' ($(head -n 1 "$T/version.out"))" \
		grep -Eq '^hybridmig [^ ]+$' "$T/version.out"
	check "hybridmig $a: what it was built with" \
		grep -Eq '^eBPF probe: (yes|no), TLS: OpenSSL [0-9]' "$T/version.out"
done
check "main --help mentions --version" sh -c "'$HM' --help | grep -q -- --version"

# --- the man page renders without warnings ------------------------------------
if ! command -v groff >/dev/null 2>&1; then
	bad "groff is needed to check the man page (Debian: groff-base)"
else
	groff -man -ww -z "$MAN" >"$T/groff.err" 2>&1
	check "groff -man -ww -z: exit 0" [ $? -eq 0 ]
	check "groff -man -ww -z: no warnings $(head -c 300 "$T/groff.err")" [ ! -s "$T/groff.err" ]
	if command -v man >/dev/null 2>&1; then
		man --warnings -l "$MAN" 2>"$T/man.err" >/dev/null
		rc=$?
		check "man --warnings: exit 0 ($rc), no warnings $(head -c 300 "$T/man.err")" \
			[ $rc -eq 0 -a ! -s "$T/man.err" ]
	fi
	# plain text, no hyphenation at line ends to split an option (the page sets .nh)
	groff -man -Tascii -P-c -P-b -P-o -P-u "$MAN" 2>/dev/null >"$T/man.txt"
fi

# man_section NAME: the rendered section NAME (a .SH heading)
man_section() {
	awk -v s="$1" '/^[A-Z]/ { on = ($0 == s); next } on' "$T/man.txt"
}

# man_subsection CMD: the rendered subsections of COMMANDS whose heading names CMD
man_subsection() {
	man_section COMMANDS | awk -v c="$1" '
		/^   [^ ]/ { on = 0; n = split($0, w, /[ ,]+/)
			for (i = 1; i <= n; i++) if (w[i] == c) on = 1; next }
		on'
}

# own_opts CMD: the long options CMD takes, from its --help: every one in the
# usage lines, and the first of each option line ("  --mem SIZE ...",
# "  -v, --verbose ..."); not those the prose names for other commands
# ("started with 'hybridmig incoming --listen ...'")
own_opts() {
	"$HM" "$1" --help | awk '
		/^usage:/ { u = 1 } /^$/ { u = 0 }
		u { s = $0; while (match(s, /--[a-z][a-z-]*/)) {
			print substr(s, RSTART, RLENGTH); s = substr(s, RSTART + RLENGTH) } }
		!u && match($0, /^ +(-[a-z], )?--[a-z][a-z-]*/) {
			s = substr($0, RSTART, RLENGTH); sub(/^.*--/, "--", s); print s }' | sort -u
}

# all_opts CMD: every long option CMD's --help names
all_opts() {
	"$HM" "$@" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u
}

# has_opt OPT FILE: FILE has OPT as a whole option (--tls not matching --tls-dir)
has_opt() {
	grep -Eq -- "(^|[^a-z-])$1([^a-z-]|\$)" "$2"
}

# --- every command of --help is in the synopsis, every option in its section ---
"$HM" --help | awk '/^commands:/ { on = 1; next } /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }' \
	>"$T/commands"
check "main --help lists the commands ($(wc -l <"$T/commands"))" [ "$(wc -l <"$T/commands")" -ge 12 ]
man_section SYNOPSIS >"$T/synopsis"
for c in $(cat "$T/commands"); do
	check "man SYNOPSIS: hybridmig $c" grep -Eq "^ *hybridmig $c( |\$)" "$T/synopsis"
done
for s in $("$HM" policy --help | sed -n 's/.*hybridmig policy \([a-z]*\).*/\1/p'); do
	check "man SYNOPSIS: hybridmig policy $s" grep -Eq "^ *hybridmig policy $s( |\$)" "$T/synopsis"
done
for c in version --version; do
	check "man SYNOPSIS: hybridmig ... $c" grep -Eq -- "(hybridmig |\| )$c( |\$)" "$T/synopsis"
done
for c in $(cat "$T/commands"); do
	man_subsection "$c" >"$T/sec.$c"
	if [ ! -s "$T/sec.$c" ]; then
		bad "man COMMANDS: no subsection for $c"
		continue
	fi
	[ -n "$(own_opts "$c")" ] || bad "'$c --help' names no option (the parse is broken)"
	missing=""
	for o in $(own_opts "$c"); do
		has_opt "$o" "$T/sec.$c" || missing="$missing $o"
	done
	check "man: every option of '$c --help' in its subsection${missing:+ (missing:$missing)}" \
		[ -z "$missing" ]
done
# and every option any --help text names, anywhere in the page
missing=""
for o in $(all_opts; for c in $(cat "$T/commands"); do all_opts "$c"; done); do
	has_opt "$o" "$T/man.txt" || missing="$missing $o"
done
check "man: every option the --help texts name${missing:+ (missing:$missing)}" [ -z "$missing" ]
for s in "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
	check "man has $s" [ -n "$(man_section "$s")" ]
done
man_section ENVIRONMENT >"$T/env"
# one line per command: the backslash continuations joined
man_section EXAMPLES | awk '{ if (sub(/\\$/, "")) { l = l $0; next } print l $0; l = "" }' \
	>"$T/examples"
for e in $(grep -rhoE 'getenv\("[A-Z_]+"\)' src | sed 's/getenv("\(.*\)")/\1/' | sort -u) \
	$(sed -n 's/^#define [A-Z_]*_ENV *"\([A-Z_]*\)".*/\1/p' src/*.h); do
	check "man ENVIRONMENT: $e" grep -qw "$e" "$T/env"
done
for x in "incoming --listen .* --tls-dir" "--insecure" "policy simulate"; do
	check "man EXAMPLES: hybridmig ... $x" grep -q -- "hybridmig .*$x" "$T/examples"
done

# --- bash completion -------------------------------------------------------------
# complete WORD...: what the completion offers for the command line WORD... (the
# last word is the one being completed), one per line
complete_words() {
	bash -c '
		. "$1" || exit 1
		shift
		fn=$(complete -p hybridmig | sed -n "s/.*-F \([^ ]*\).*/\1/p")
		[ -n "$fn" ] || exit 1
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		"$fn" hybridmig "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@" 2>>"$T/complete.err"
}

bash -c '. "$1" && complete -p hybridmig' _ "$COMP" >"$T/complete.p" 2>"$T/complete.err"
check "completion loads in bash and registers for hybridmig $(head -c 300 "$T/complete.err")" \
	grep -q -- '-F ' "$T/complete.p"
check "complete 'hybridmig mi' -> migrate" [ "$(complete_words hybridmig mi)" = migrate ]
check "complete 'hybridmig migrate --mo' -> --mode" \
	[ "$(complete_words hybridmig migrate --mo)" = --mode ]
complete_words hybridmig migrate --mode "" >"$T/c.mode"
for m in auto precopy postcopy hybrid; do
	check "complete 'migrate --mode ' offers $m" grep -qx "$m" "$T/c.mode"
done
complete_words hybridmig "" >"$T/c.cmds"
missing=""
for c in $(cat "$T/commands") --version --help; do
	grep -qx -- "$c" "$T/c.cmds" || missing="$missing $c"
done
check "complete 'hybridmig ' offers every command${missing:+ (missing:$missing)}" [ -z "$missing" ]
complete_words hybridmig policy "" >"$T/c.policy"
for s in simulate explain keys; do
	check "complete 'hybridmig policy ' offers $s" grep -qx "$s" "$T/c.policy"
done
for c in $(cat "$T/commands"); do
	if [ "$c" = policy ]; then
		{ complete_words hybridmig policy simulate --; complete_words hybridmig policy explain --; } \
			>"$T/c.opts"
	else
		complete_words hybridmig "$c" -- >"$T/c.opts"
	fi
	missing=""
	for o in $(own_opts "$c"); do
		grep -qx -- "$o" "$T/c.opts" || missing="$missing $o"
	done
	check "completion: every option of '$c --help'${missing:+ (missing:$missing)}" [ -z "$missing" ]
done
complete_words hybridmig run --guest "" >"$T/c.guest"
for g in idle dirtier fault; do
	check "complete 'run --guest ' offers $g" grep -qx "$g" "$T/c.guest"
done
if "$HM" run --help | grep -q -- --dirty-tracking; then
	complete_words hybridmig run --dirty-tracking "" >"$T/c.dt"
	for m in ring log auto; do
		check "complete 'run --dirty-tracking ' offers $m" grep -qx "$m" "$T/c.dt"
	done
fi
mkdir -p "$T/files"
: >"$T/files/limits.conf"
check "complete 'migrate --policy PATH' completes files" \
	[ "$(complete_words hybridmig migrate --policy "$T/files/lim")" = "$T/files/limits.conf" ]

# --- the systemd unit -------------------------------------------------------------
check "unit: ExecStart runs hybridmig incoming" \
	grep -Eq '^ExecStart=/[^ ]*/hybridmig incoming( |$)' "$UNIT"
check "unit: Restart=no" grep -qx 'Restart=no' "$UNIT"
check "unit: reads /etc/hybridmig/incoming-%i.env" \
	grep -qx 'EnvironmentFile=/etc/hybridmig/incoming-%i.env' "$UNIT"
check "unit: /dev/kvm allowed" grep -q '^DeviceAllow=/dev/kvm' "$UNIT"
check "unit: no PrivateDevices" not grep -q '^PrivateDevices=yes' "$UNIT"
check "unit: LimitMEMLOCK=infinity" grep -qx 'LimitMEMLOCK=infinity' "$UNIT"
for o in $(sed -n 's/^ExecStart=[^ ]* incoming //p' "$UNIT" | grep -oE -- '--[a-z][a-z-]*'); do
	check "unit: incoming takes $o" sh -c "'$HM' incoming --help | grep -q -- '$o '"
done

# --- make install --------------------------------------------------------------------
R=$T/root
# -o all: install what is built; never rebuild here (another O= may use other flags)
make --no-print-directory -s -o all install O="$O" DESTDIR="$R" PREFIX=/usr >"$T/install.log" 2>&1
check "make install DESTDIR=... PREFIX=/usr: exit 0 $(head -c 300 "$T/install.log")" [ $? -eq 0 ]
check "installed: /usr/bin/hybridmig, executable" [ -x "$R/usr/bin/hybridmig" ]
check "installed binary: same --version" \
	[ "$("$R/usr/bin/hybridmig" --version 2>&1)" = "$("$HM" --version 2>&1)" ]
check "installed: man page" cmp -s docs/hybridmig.1 "$R/usr/share/man/man1/hybridmig.1"
check "installed: bash completion" \
	cmp -s tools/completion/hybridmig.bash "$R/usr/share/bash-completion/completions/hybridmig"
IU=$R/usr/lib/systemd/system/hybridmig-incoming@.service
check "installed: systemd unit" [ -f "$IU" ]
check "installed unit: ExecStart=/usr/bin/hybridmig incoming" \
	grep -Eq '^ExecStart=/usr/bin/hybridmig incoming( |$)' "$IU"
if command -v systemd-analyze >/dev/null 2>&1; then
	# the unit as installed, its ExecStart pointing at the staged binary
	mkdir -p "$T/unit"
	sed "s|/usr/bin/hybridmig|$R/usr/bin/hybridmig|g" "$IU" >"$T/unit/hybridmig-incoming@.service"
	systemd-analyze verify --man=no "$T/unit/hybridmig-incoming@test.service" >"$T/verify.log" 2>&1
	rc=$?
	check "systemd-analyze verify: exit 0 ($rc), clean $(head -c 300 "$T/verify.log")" \
		[ $rc -eq 0 -a ! -s "$T/verify.log" ]
fi

finish
