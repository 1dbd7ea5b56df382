#!/usr/bin/env bash
# The API as supervisord starts it: its metrics directory (PROMETHEUS_MULTIPROC_DIR, where
# every API process of this program writes its counters, taskline/api/metrics.py) emptied
# first, as prometheus_client's multiprocess mode requires, then the command given.
# Emptied at every start of the program: every process that wrote there is gone then.
set -euo pipefail
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  rm -rf "$PROMETHEUS_MULTIPROC_DIR"
  mkdir -p -m 700 "$PROMETHEUS_MULTIPROC_DIR"
fi
exec "$@"
