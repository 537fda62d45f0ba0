#!/bin/sh
# First command on a fresh Debian 12 (as root): install whatever is missing
# (make included: a minimal Debian has no make), build, and run the demo
# migration between two local VMs. `make check` is the second command.
set -e
cd "$(dirname "$0")/.."
sh tools/deps.sh
exec make demo
