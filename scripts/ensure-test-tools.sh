#!/usr/bin/env bash
# Tools the test suite uses beyond Python packages: docker-compose (Debian's package) validates
# docker-compose.yml offline. Installed with apt-get when run as root; otherwise that test skips.
set -uo pipefail
command -v docker-compose >/dev/null && exit 0
docker compose version >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing docker-compose with apt-get (validates docker-compose.yml)…"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null 2>&1; } ||
    echo "Could not install docker-compose: the compose file check will be skipped." >&2
else
  echo "docker-compose is not installed (sudo apt-get install -y docker-compose):" \
    "the compose file check will be skipped." >&2
fi
exit 0
