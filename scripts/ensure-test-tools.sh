#!/usr/bin/env bash
# Tools the test suite uses beyond Python packages: docker-compose (Debian's package) validates
# docker-compose.yml offline. Installed with apt-get when run as root; otherwise that test skips.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/apt.sh
command -v docker-compose >/dev/null && exit 0
docker compose version >/dev/null 2>&1 && exit 0
apt_install docker-compose ||
  echo "docker-compose is not installed (sudo apt-get install -y docker-compose):" \
    "the compose file check will be skipped." >&2
exit 0
