#!/usr/bin/env bash
# One more worker of a line (LINE, by default the main line), in the foreground: the same settings as `make run`'s (.env, then
# the environment), against the same RabbitMQ and Redis, on this machine or another. RabbitMQ
# gives the line to one worker at a time (single active consumer); this one waits as a
# standby until the active one leaves, then takes over. Its node name must be its own:
# TASKLINE_WORKER_NAME (default standby-<pid>) @ this host.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
# With TASKLINE_ENV=production, the worker refuses unsafe settings before it connects.
name="${TASKLINE_WORKER_NAME:-standby-$$}"
# Its line: LINE (make worker LINE=slow), else TASKLINE_WORKER_LINE, else the main line.
export TASKLINE_WORKER_LINE="${LINE:-$TASKLINE_WORKER_LINE}"
echo "Taskline worker $name@$(hostname) on line ${TASKLINE_WORKER_LINE:-(main)}; logs on this terminal. Ctrl-C stops it."
# As supervisord runs its worker: SIGTERM lets the running task finish (soft shutdown).
export REMAP_SIGTERM=SIGQUIT
exec "$TASKLINE_PYTHON" -m celery -A taskline.worker.celery_app worker \
  --pool=prefork --concurrency=1 --loglevel=INFO --hostname="$name@%h"
