#!/bin/sh
# SPDX-License-Identifier: MIT
# Make the TLS credentials hybridmig's migration connections need: a CA and,
# for each host NAME, DIR/NAME/{ca.pem,cert.pem,key.pem}, the directory that
# `--tls-dir DIR/NAME` takes. Idempotent: what exists and is still good is kept.
set -eu

usage() {
	cat <<EOF
usage: $0 [--loopback] DIR [NAME...]

Creates, with the openssl command:
  DIR/ca.pem, DIR/ca.key   a CA (EC P-256, 10 years), only if absent
  DIR/NAME/ca.pem          a copy of the CA certificate, to trust peers by
  DIR/NAME/cert.pem        a host certificate for NAME signed by the CA:
                           EC P-256, 1 year, for both TLS client and server
                           use, subjectAltName DNS:NAME (IP:NAME instead when
                           NAME is an IPv4 or IPv6 address)
  DIR/NAME/key.pem         its private key (mode 0600)

  --loopback   also put DNS:localhost and IP:127.0.0.1 in the host
               certificates, for a source and destination on one machine

Run it again to add hosts; a host certificate is re-issued only when it no
longer verifies against DIR/ca.pem (expired, other CA) or its names changed.
Copy DIR/NAME to host NAME; keep DIR/ca.key off the migration hosts.

Example: $0 --loopback /etc/hybridmig src dst
         hybridmig incoming --tls-dir /etc/hybridmig/dst --tls-peer src ...
         hybridmig migrate --tls-dir /etc/hybridmig/src --tls-peer dst ...
EOF
}

die() {
	echo "mkcerts: $*" >&2
	exit 1
}

is_ipv4() {
	echo "$1" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}$'
}

# Host NAMEs become directory names and certificate names: no slashes,
# no leading dot or dash, only what DNS names and IP addresses use.
check_name() {
	case $1 in
	'' | -* | .* | */* | *[!A-Za-z0-9.:_-]*) die "bad host name '$1'" ;;
	esac
}

# The subjectAltName value NAME's certificate must carry.
# An address gets an IP entry only: a dNSName of "10.0.0.1" or "::1" is not
# a DNS name (RFC 5280 4.2.1.6), and peers check addresses against IP entries.
san_for() {
	san="DNS:$1"
	if is_ipv4 "$1"; then
		san="IP:$1"
	else
		case $1 in *:*) san="IP:$1" ;; esac
	fi
	if [ "$loopback" = 1 ] && [ "$1" != localhost ]; then
		san="$san,DNS:localhost"
	fi
	if [ "$loopback" = 1 ] && [ "$1" != 127.0.0.1 ]; then
		san="$san,IP:127.0.0.1"
	fi
	echo "$san"
}

make_ca() {
	[ -s "$dir/ca.pem" ] && [ -s "$dir/ca.key" ] && return 0
	[ -e "$dir/ca.pem" ] || [ -e "$dir/ca.key" ] &&
		die "$dir has only one of ca.pem and ca.key: remove it or restore the other"
	(
		umask 077
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
			-out "$dir/ca.key.tmp" 2>/dev/null
	)
	openssl req -x509 -new -key "$dir/ca.key.tmp" -sha256 -days 3650 \
		-subj "/CN=hybridmig CA $(hostname 2>/dev/null || echo) $(date +%Y-%m-%d)" \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$dir/ca.pem.tmp"
	mv "$dir/ca.key.tmp" "$dir/ca.key"
	mv "$dir/ca.pem.tmp" "$dir/ca.pem"
	echo "mkcerts: made the CA $dir/ca.pem"
}

# Is the existing certificate of host $1 still good: signed by our CA, valid,
# matching its key, and carrying exactly the names asked for?
host_ok() {
	h="$dir/$1"
	[ -s "$h/cert.pem" ] && [ -s "$h/key.pem" ] || return 1
	openssl verify -CAfile "$dir/ca.pem" "$h/cert.pem" >/dev/null 2>&1 || return 1
	# same number of names, and each wanted one present (openssl prints IPv6
	# addresses expanded, so compare through -checkhost/-checkip, not as text)
	want=$(san_for "$1")
	have=$(openssl x509 -in "$h/cert.pem" -noout -ext subjectAltName 2>/dev/null | sed -n '2p')
	[ "$(echo "$have" | tr ',' '\n' | wc -l)" = "$(echo "$want" | tr ',' '\n' | wc -l)" ] ||
		return 1
	for e in $(echo "$want" | tr ',' ' '); do
		case $e in
		DNS:*) check=-checkhost ;;
		*) check=-checkip ;;
		esac
		openssl x509 -in "$h/cert.pem" -noout $check "${e#*:}" | grep -q ' does match' ||
			return 1
	done
	[ "$(openssl x509 -in "$h/cert.pem" -noout -pubkey)" = \
		"$(openssl pkey -in "$h/key.pem" -pubout 2>/dev/null)" ]
}

make_host() {
	h="$dir/$1"
	(umask 077 && mkdir -p "$h")
	if host_ok "$1"; then
		cmp -s "$dir/ca.pem" "$h/ca.pem" || cp "$dir/ca.pem" "$h/ca.pem"
		echo "mkcerts: kept $h/cert.pem"
		return 0
	fi
	ext="$h/ext.tmp"
	cat >"$ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $(san_for "$1")
EOF
	(
		umask 077
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
			-out "$h/key.pem.tmp" 2>/dev/null
	)
	openssl req -new -key "$h/key.pem.tmp" -subj "/CN=$1" -out "$h/csr.tmp"
	openssl x509 -req -in "$h/csr.tmp" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -sha256 -days 365 \
		-extfile "$ext" -out "$h/cert.pem.tmp" 2>/dev/null
	rm -f "$h/csr.tmp" "$ext"
	cp "$dir/ca.pem" "$h/ca.pem"
	mv "$h/key.pem.tmp" "$h/key.pem"
	mv "$h/cert.pem.tmp" "$h/cert.pem"
	echo "mkcerts: made $h/cert.pem ($(san_for "$1"))"
}

loopback=0
while [ $# -gt 0 ]; do
	case $1 in
	--loopback) loopback=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--) shift && break ;;
	-*)
		usage >&2
		exit 2
		;;
	*) break ;;
	esac
	shift
done
[ $# -ge 1 ] || {
	usage >&2
	exit 2
}
command -v openssl >/dev/null || die "the openssl command is missing (apt-get install openssl)"
dir=${1%/}
shift
for name in "$@"; do check_name "$name"; done
(umask 077 && mkdir -p "$dir")
make_ca
for name in "$@"; do make_host "$name"; done
