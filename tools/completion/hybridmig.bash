# SPDX-License-Identifier: MIT
# bash completion for hybridmig: commands, each command's options (as in
# 'hybridmig COMMAND --help'; tests/e2e/test_docs.sh keeps them in step),
# option values (--mode, --guest), files for the options that take a path.
# Installed by 'make install' to $(PREFIX)/share/bash-completion/completions/hybridmig;
# or source it from ~/.bashrc.

_hybridmig_commands="run status verify pause resume stop abort switch-postcopy incoming migrate
	version help"

# _hybridmig_opts CMD: the options CMD takes
_hybridmig_opts()
{
	case $1 in
	version | help | --*)
		return ;;
	run)
		echo "--mem --vcpus --guest --control --seconds --json -v --verbose" ;;
	status | verify | pause | resume | stop | abort | switch-postcopy)
		echo "--control --json --timeout --force" ;;
	incoming)
		echo "--listen --tls-dir --tls-peer --insecure --control --max-mem --wait
			--reconnect-timeout --json -v --verbose" ;;
	migrate)
		echo "--control --to --mode --tls-dir --tls-peer --insecure --bandwidth
			--downtime-limit --timeout --postcopy-after-rounds --reconnect-timeout
			--resume --json" ;;
	esac
	echo "--help"
}

# _hybridmig_value CMD OPTION CUR: fill COMPREPLY with OPTION's values; 1 when
# OPTION takes no value (complete options instead)
_hybridmig_value()
{
	case $2 in
	--mode)
		mapfile -t COMPREPLY < <(compgen -W "precopy postcopy hybrid" -- "$3") ;;
	--guest)
		# NAME[:k=v,...]: the built-in guests (run --help)
		mapfile -t COMPREPLY < <(compgen -W "dirtier idle fault" -- "$3") ;;
	--control)
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

	COMPREPLY=()
	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
	if [ "$COMP_CWORD" -le 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W "$_hybridmig_commands --help --version -V" -- "$cur")
		return 0
	fi
	_hybridmig_value "$cmd" "$prev" "$cur" && return 0
	mapfile -t COMPREPLY < <(compgen -W "$(_hybridmig_opts "$cmd")" -- "$cur")
	return 0
}

complete -F _hybridmig hybridmig
