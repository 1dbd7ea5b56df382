#!/usr/bin/env bash
# The load generator: wrk (Debian's package; wrk2 is not packaged). Installs it with apt-get
# when run as root, otherwise says which command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/apt.sh
command -v wrk >/dev/null && exit 0
apt_install wrk || { echo "wrk is not installed. Install it with: sudo apt-get install -y wrk" >&2; exit 1; }
