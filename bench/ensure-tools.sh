#!/usr/bin/env bash
# The load generator: wrk (Debian's package; wrk2 is not packaged). Installs it with apt-get
# when run as root, otherwise says which command to run.
set -euo pipefail
command -v wrk >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing wrk with apt-get…"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }
else
  echo "wrk is not installed. Install it with: sudo apt-get install -y wrk" >&2
  exit 1
fi
