# SPDX-License-Identifier: MIT
# bash completion for hybridmig: commands, each command's options (as in
# 'hybridmig COMMAND --help'; tests/e2e/test_docs.sh keeps them in step),
# option values (--mode, --dirty-tracking, --guest), files for the options
# that take a path, and the policy subcommands.
# Installed by 'make install' to $(PREFIX)/share/bash-completion/completions/hybridmig;
# or source it from ~/.bashrc.

_hybridmig_commands="run status verify pause resume stop abort switch-postcopy job set-bandwidth
	set-downtime incoming migrate trace policy version help"

# _hybridmig_opts CMD [SUBCMD]: the options CMD (policy: SUBCMD) takes
_hybridmig_opts()
{
	case $1 in
	version | help | --*)
		return ;;
	run)
		echo "--mem --vcpus --guest --control --seconds --dirty-tracking --metrics-listen --json
			-v --verbose" ;;
	status | verify | pause | resume | stop | abort | switch-postcopy | job | set-bandwidth | \
		set-downtime)
		echo "--control --json --timeout --force" ;;
	incoming)
		echo "--listen --tls-dir --tls-peer --insecure --control --max-mem --wait
			--reconnect-timeout --dirty-tracking --metrics-listen --socket-buffer --json
			-v --verbose" ;;
	migrate)
		echo "--control --to --mode --tls-dir --tls-peer --insecure --bandwidth
			--downtime-limit --timeout --postcopy-after-rounds --reconnect-timeout
			--socket-buffer --policy --record --resume --json" ;;
	trace)
		echo "--control --seconds --record --json --no-bpf" ;;
	policy)
		case $2 in
		simulate) echo "--trace --policy --bandwidth --json" ;;
		explain) echo "--control --bandwidth --policy --seconds --json" ;;
		esac ;;
	esac
	echo "--help"
}

# _hybridmig_value CMD OPTION CUR: fill COMPREPLY with OPTION's values; 1 when
# OPTION takes no value (complete options instead)
_hybridmig_value()
{
	case $2 in
	--mode)
		mapfile -t COMPREPLY < <(compgen -W "auto precopy postcopy hybrid" -- "$3") ;;
	--dirty-tracking)
		mapfile -t COMPREPLY < <(compgen -W "auto ring log" -- "$3") ;;
	--socket-buffer)
		mapfile -t COMPREPLY < <(compgen -W "kernel 16M 64M 256M" -- "$3") ;;
	--guest)
		# NAME[:k=v,...]: the built-in guests (run --help)
		mapfile -t COMPREPLY < <(compgen -W "dirtier idle fault" -- "$3") ;;
	--policy | --record | --trace | --control)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$3") ;;
	--tls-dir)
		# a directory holding ca.pem, cert.pem and key.pem
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$3") ;;
	--mem | --vcpus | --seconds | --timeout | --listen | --tls-peer | --max-mem | --wait | \
		--reconnect-timeout | --to | --bandwidth | --downtime-limit | --postcopy-after-rounds)
		# a value only the user knows: offer nothing rather than options
		COMPREPLY=() ;;
	*)
		return 1 ;;
	esac
	return 0
}

_hybridmig()
{
	local cur=${COMP_WORDS[COMP_CWORD]}
	local prev=""
	local cmd=${COMP_WORDS[1]}
	local sub=""

	COMPREPLY=()
	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
	if [ "$COMP_CWORD" -le 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W "$_hybridmig_commands --help --version -V" -- "$cur")
		return 0
	fi
	if [ "$cmd" = policy ]; then
		if [ "$COMP_CWORD" -eq 2 ]; then
			mapfile -t COMPREPLY < <(compgen -W "simulate explain keys --help" -- "$cur")
			return 0
		fi
		sub=${COMP_WORDS[2]}
	fi
	_hybridmig_value "$cmd" "$prev" "$cur" && return 0
	mapfile -t COMPREPLY < <(compgen -W "$(_hybridmig_opts "$cmd" "$sub")" -- "$cur")
	return 0
}

complete -F _hybridmig hybridmig
