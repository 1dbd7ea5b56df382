#!/usr/bin/env bash
# supervisorctl for the stack `make run` started, e.g. `scripts/supervisorctl.sh status`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
exec .venv/bin/supervisorctl -c supervisord.conf "$@"
