#!/bin/sh
# Install the Debian packages named as arguments (default: tools/deps.list),
# only those missing. apt-get update runs only when something must be
# installed. POSIX sh and dpkg/apt only: this runs before make exists.
set -e
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
	set -- $(grep -v '^#' tools/deps.list)
fi
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
