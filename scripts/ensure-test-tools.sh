#!/usr/bin/env bash
# Tools the test suite uses beyond Python packages, installed with apt-get when run as root:
# docker-compose (Debian's package) validates docker-compose.yml offline, and chromium (with a
# font for legible screenshots) is the browser tests/e2e/test_ui.py drives through Playwright
# (Playwright's own browser download is not used). Without them those tests fail, saying so.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/apt.sh
if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
  apt_install docker-compose ||
    echo "docker-compose is not installed (sudo apt-get install -y docker-compose):" \
      "the compose checks of tests/unit/test_deployment.py will fail." >&2
fi
if ! command -v chromium >/dev/null; then
  { apt_install chromium && apt_install fonts-dejavu-core; } ||
    echo "chromium is not installed (sudo apt-get install -y chromium fonts-dejavu-core):" \
      "tests/e2e/test_ui.py will fail." >&2
fi
exit 0
